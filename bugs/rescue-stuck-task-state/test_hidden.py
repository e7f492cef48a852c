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

"""debuglab hidden tests: a failed compute operation gives its task back.

Documented behaviour (nova/compute/manager.py, reverts_task_state): when an
operation of the compute manager fails, the instance's task_state is reset to
None, so that the user can act on the server again; only a task that was
preempted (UnexpectedTaskStateError) keeps its task_state. The tests run
operations that fail and read the instance back from the database.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import manager
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects
from nova import test
from nova.tests.unit.compute import test_compute


class FailedOperationRevertsTaskStateTest(test_compute.BaseTestCase):

    def _instance(self, task_state):
        # an ACTIVE server, as the API leaves it when it casts an operation
        return self._create_fake_instance_obj(
            {'vm_state': vm_states.ACTIVE, 'task_state': task_state})

    def _in_db(self, instance):
        return objects.Instance.get_by_uuid(self.context, instance.uuid)

    def _failing_operation(self, error):
        @manager.reverts_task_state
        def operation(self, context, instance):
            raise error

        return operation

    def test_rescue_without_its_image_gives_the_task_back(self):
        # the image the server was booted from has been deleted since
        instance = self._instance(task_states.RESCUING)
        with mock.patch('nova.image.glance.API.get',
                        side_effect=exception.ImageNotFound(
                            image_id=instance.image_ref)):
            self.assertRaises(exception.ImageNotFound,
                              self.compute.rescue_instance, self.context,
                              instance=instance, rescue_password=None,
                              rescue_image_ref=None, clean_shutdown=True)
        stored = self._in_db(instance)
        self.assertIsNone(stored.task_state)
        self.assertEqual(vm_states.ACTIVE, stored.vm_state)

    def test_stop_of_a_guest_the_hypervisor_lost_gives_the_task_back(self):
        # the guest is gone from the hypervisor (the fake driver does not
        # know it), the server is not deleted
        instance = self._instance(task_states.POWERING_OFF)
        self.assertNotIn(instance.uuid, self.compute.driver.instances)
        self.assertRaises(exception.InstanceNotFound,
                          self.compute.stop_instance, self.context,
                          instance=instance, clean_shutdown=True)
        stored = self._in_db(instance)
        self.assertIsNone(stored.task_state)
        self.assertEqual(vm_states.ACTIVE, stored.vm_state)

    def test_not_found_errors_give_the_task_back(self):
        for error in (exception.ImageNotFound(image_id=uuids.image),
                      exception.PortNotFound(port_id=uuids.port),
                      exception.FlavorNotFound(flavor_id='42'),
                      exception.InstanceNotFound(instance_id=uuids.other),
                      exception.NotFound()):
            instance = self._instance(task_states.REBOOTING)
            operation = self._failing_operation(error)
            self.assertRaises(type(error), operation, self.compute,
                              self.context, instance)
            self.assertIsNone(self._in_db(instance).task_state,
                              type(error).__name__)

    def test_instance_passed_by_keyword(self):
        instance = self._instance(task_states.PAUSING)
        operation = self._failing_operation(
            exception.ImageNotFound(image_id=uuids.image))
        self.assertRaises(exception.ImageNotFound, operation, self.compute,
                          self.context, instance=instance)
        self.assertIsNone(self._in_db(instance).task_state)

    def test_other_errors_give_the_task_back(self):
        instance = self._instance(task_states.REBOOTING)
        operation = self._failing_operation(test.TestingException())
        self.assertRaises(test.TestingException, operation, self.compute,
                          self.context, instance=instance)
        self.assertIsNone(self._in_db(instance).task_state)

    def test_preempted_task_keeps_its_state(self):
        instance = self._instance(task_states.REBOOTING)
        operation = self._failing_operation(
            exception.UnexpectedTaskStateError(
                instance_uuid=instance.uuid, expected='rebooting',
                actual='deleting'))
        self.assertRaises(exception.UnexpectedTaskStateError, operation,
                          self.compute, self.context, instance=instance)
        self.assertEqual(task_states.REBOOTING,
                         self._in_db(instance).task_state)

    def test_deleted_instance_raises_the_original_error(self):
        instance = self._instance(task_states.REBOOTING)
        error = exception.InstanceNotFound(instance_id=instance.uuid)
        operation = self._failing_operation(error)
        instance.destroy()
        raised = self.assertRaises(exception.InstanceNotFound, operation,
                                   self.compute, self.context,
                                   instance=instance)
        self.assertIs(error, raised)
