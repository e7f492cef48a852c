# Copyright 2026 debuglab
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""debuglab hidden tests: NumInstancesFilter / AggregateNumInstancesFilter.

Documented behaviour (nova.conf.scheduler, max_instances_per_host): the
filters "will reject any host that has at least as many instances as this
option's value".  The tests only call host_passes() and check the result.
"""

from unittest import mock

from nova import objects
from nova.scheduler.filters import num_instances_filter
from nova import test
from nova.tests.unit.scheduler import fakes


class NumInstancesLimitTest(test.NoDBTestCase):

    def _host(self, num_instances):
        return fakes.FakeHostState('host1', 'node1',
                                   {'num_instances': num_instances})

    def _passes(self, filt, num_instances, spec_obj=None):
        spec_obj = spec_obj or objects.RequestSpec()
        return filt.host_passes(self._host(num_instances), spec_obj)

    def test_host_at_limit_is_rejected(self):
        filt = num_instances_filter.NumInstancesFilter()
        for limit in (1, 2, 5, 50):
            self.flags(max_instances_per_host=limit,
                       group='filter_scheduler')
            self.assertFalse(self._passes(filt, limit),
                             'host with %d instances, limit %d'
                             % (limit, limit))

    def test_host_below_limit_is_accepted(self):
        filt = num_instances_filter.NumInstancesFilter()
        for limit in (1, 2, 5, 50):
            self.flags(max_instances_per_host=limit,
                       group='filter_scheduler')
            self.assertTrue(self._passes(filt, limit - 1))
            self.assertTrue(self._passes(filt, 0))

    def test_host_above_limit_is_rejected(self):
        filt = num_instances_filter.NumInstancesFilter()
        self.flags(max_instances_per_host=3, group='filter_scheduler')
        self.assertFalse(self._passes(filt, 4))
        self.assertFalse(self._passes(filt, 100))

    def test_single_instance_per_host(self):
        # max_instances_per_host=1: an empty host is fine, a host that
        # already runs one instance is full.
        filt = num_instances_filter.NumInstancesFilter()
        self.flags(max_instances_per_host=1, group='filter_scheduler')
        self.assertTrue(self._passes(filt, 0))
        self.assertFalse(self._passes(filt, 1))

    @mock.patch('nova.scheduler.filters.utils.aggregate_values_from_key')
    def test_aggregate_limit_at_limit_is_rejected(self, agg_mock):
        filt = num_instances_filter.AggregateNumInstancesFilter()
        self.flags(max_instances_per_host=50, group='filter_scheduler')
        spec_obj = objects.RequestSpec(context=mock.sentinel.ctx)
        agg_mock.return_value = set(['4'])
        self.assertFalse(self._passes(filt, 4, spec_obj))
        self.assertTrue(self._passes(filt, 3, spec_obj))

    @mock.patch('nova.scheduler.filters.utils.aggregate_values_from_key')
    def test_aggregate_falls_back_to_config(self, agg_mock):
        filt = num_instances_filter.AggregateNumInstancesFilter()
        self.flags(max_instances_per_host=2, group='filter_scheduler')
        spec_obj = objects.RequestSpec(context=mock.sentinel.ctx)
        agg_mock.return_value = set()
        self.assertFalse(self._passes(filt, 2, spec_obj))
        self.assertTrue(self._passes(filt, 1, spec_obj))
