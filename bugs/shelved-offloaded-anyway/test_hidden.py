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

"""debuglab hidden tests: the periodic offload of shelved instances.

Documented behaviour (nova.conf.compute, shelved_offload_time): "Any value < 0:
An instance will never offload"; a positive value is the number of seconds a
shelved instance stays on its host before the periodic task offloads it. The
tests run ComputeManager._poll_shelved_instances over shelved instances in the
database and check which ones it offloads.
"""

import datetime
from unittest import mock

from oslo_utils import timeutils

from nova.compute import power_state
from nova.compute import vm_states
from nova.tests.unit.compute import test_compute
from nova.virt import fake


class PollShelvedInstancesTest(test_compute.BaseTestCase):

    def _shelved(self, seconds_ago):
        instance = self._create_fake_instance_obj()
        instance.vm_state = vm_states.SHELVED
        instance.task_state = None
        instance.host = self.compute.host
        shelved_at = timeutils.utcnow() - datetime.timedelta(
            seconds=seconds_ago)
        instance.system_metadata['shelved_at'] = shelved_at.isoformat()
        instance.save()
        return instance

    def _offloaded_by_poll(self):
        with mock.patch.object(self.compute,
                               'shelve_offload_instance') as offload:
            self.compute._poll_shelved_instances(self.context)
        return sorted(call.args[1].uuid if len(call.args) > 1
                      else call.kwargs['instance'].uuid
                      for call in offload.call_args_list)

    def test_negative_offload_time_never_offloads(self):
        self._shelved(seconds_ago=30 * 24 * 3600)
        self._shelved(seconds_ago=10)
        for offload_time in (-1, -5, -3600):
            self.flags(shelved_offload_time=offload_time)
            self.assertEqual([], self._offloaded_by_poll(),
                             'shelved_offload_time = %d' % offload_time)

    def test_negative_offload_time_with_a_short_poll_interval(self):
        self._shelved(seconds_ago=3600)
        self.flags(shelved_offload_time=-1, shelved_poll_interval=5)
        self.assertEqual([], self._offloaded_by_poll())

    def test_negative_offload_time_keeps_the_instance_shelved(self):
        instance = self._shelved(seconds_ago=3600)
        # the shelved guest is still on the hypervisor (powered off)
        self.compute.driver.instances[instance.uuid] = fake.FakeInstance(
            instance.name, power_state.SHUTDOWN, instance.uuid)
        self.flags(shelved_offload_time=-1)
        self.compute._poll_shelved_instances(self.context)
        instance.refresh()
        self.assertEqual(vm_states.SHELVED, instance.vm_state)
        self.assertIsNone(instance.task_state)

    def test_positive_offload_time_offloads_expired_only(self):
        old = self._shelved(seconds_ago=7200)
        self._shelved(seconds_ago=60)
        self.flags(shelved_offload_time=3600)
        self.assertEqual([old.uuid], self._offloaded_by_poll())

    def test_positive_offload_time_not_expired(self):
        self._shelved(seconds_ago=10)
        self.flags(shelved_offload_time=3600, shelved_poll_interval=5)
        self.assertEqual([], self._offloaded_by_poll())
