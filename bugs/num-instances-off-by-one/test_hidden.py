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
option's value".  The tests call host_passes() (directly and through the
scheduler's filter handler) and only check which hosts pass.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova import objects
from nova.scheduler import filters
from nova.scheduler.filters import num_instances_filter
from nova import test
from nova.tests.unit.scheduler import fakes


class NumInstancesLimitTest(test.NoDBTestCase):

    def _host(self, num_instances, name='host1'):
        return fakes.FakeHostState(name, 'node1',
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
            self.assertTrue(self._passes(filt, limit - 1),
                            'host with %d instances, limit %d'
                            % (limit - 1, limit))
            self.assertTrue(self._passes(filt, 0),
                            'empty host, limit %d' % limit)

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

    def test_filling_a_host_up_to_its_limit(self):
        # What the scheduler sees while servers are booted one by one on
        # one host: each accepted server adds one instance to the host.
        filt = num_instances_filter.NumInstancesFilter()
        for limit in (1, 2, 3, 7):
            self.flags(max_instances_per_host=limit,
                       group='filter_scheduler')
            host = self._host(0)
            accepted = 0
            while filt.host_passes(host, objects.RequestSpec()):
                accepted += 1
                host.num_instances += 1
                if accepted > limit:
                    break
            self.assertEqual(limit, accepted, 'limit %d' % limit)

    def test_filter_handler_keeps_hosts_with_room(self):
        self.flags(max_instances_per_host=2, group='filter_scheduler')
        hosts = [self._host(n, name='host%d' % n) for n in (0, 1, 2, 3)]
        handler = filters.HostFilterHandler()
        kept = handler.get_filtered_objects(
            [num_instances_filter.NumInstancesFilter()], hosts,
            objects.RequestSpec(instance_uuid=uuids.instance))
        self.assertEqual(['host0', 'host1'], sorted(h.host for h in kept))

    @mock.patch('nova.scheduler.filters.utils.aggregate_values_from_key')
    def test_aggregate_host_at_limit_is_rejected(self, agg_mock):
        filt = num_instances_filter.AggregateNumInstancesFilter()
        self.flags(max_instances_per_host=50, group='filter_scheduler')
        spec_obj = objects.RequestSpec(context=mock.sentinel.ctx)
        agg_mock.return_value = set(['4'])
        self.assertFalse(self._passes(filt, 4, spec_obj))
        self.assertFalse(self._passes(filt, 5, spec_obj))

    @mock.patch('nova.scheduler.filters.utils.aggregate_values_from_key')
    def test_aggregate_host_below_limit_is_accepted(self, agg_mock):
        filt = num_instances_filter.AggregateNumInstancesFilter()
        self.flags(max_instances_per_host=50, group='filter_scheduler')
        spec_obj = objects.RequestSpec(context=mock.sentinel.ctx)
        for limit in (1, 2, 4):
            agg_mock.return_value = set([str(limit)])
            self.assertTrue(self._passes(filt, limit - 1, spec_obj),
                            'aggregate limit %d' % limit)

    @mock.patch('nova.scheduler.filters.utils.aggregate_values_from_key')
    def test_aggregate_falls_back_to_config(self, agg_mock):
        filt = num_instances_filter.AggregateNumInstancesFilter()
        self.flags(max_instances_per_host=2, group='filter_scheduler')
        spec_obj = objects.RequestSpec(context=mock.sentinel.ctx)
        agg_mock.return_value = set()
        self.assertFalse(self._passes(filt, 2, spec_obj))
        self.assertTrue(self._passes(filt, 1, spec_obj))
