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

"""debuglab hidden tests: a rebuild whose new image the scheduler rejects.

nova-api saves the new image_ref on the instance before it casts the rebuild
to the conductor. When scheduling then fails, the instance must be left (in
the database, where the next request reads it) with the image it was built
from, so that `server show` is right and the next rebuild with the rejected
image goes through the scheduler again. The tests drive the conductor's
rebuild_instance() against a real cell database and read the instance back.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import task_states
from nova.compute import vm_states
from nova.conductor import manager as conductor_manager
from nova import context
from nova import exception
from nova import objects
from nova.scheduler import utils as scheduler_utils
from nova.tests.unit.compute import test_compute
from nova.tests.unit import fake_server_actions


class RebuildRollbackTest(test_compute.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conductor = conductor_manager.ComputeTaskManager()
        self.ctxt = context.RequestContext(
            self.user_id, self.project_id, is_admin=True)
        fake_server_actions.stub_out_action_events(self)
        for target in ('nova.compute.utils.heal_reqspec_is_bfv',
                       'nova.objects.RequestSpec.ensure_network_information',
                       'nova.compute.utils.notify_about_instance_rebuild',
                       'nova.compute.utils.notify_about_compute_task_error'):
            patcher = mock.patch(target)
            patcher.start()
            self.addCleanup(patcher.stop)
        self.rebuild_rpc = self.useFixture_mock(
            self.conductor.compute_rpcapi, 'rebuild_instance')

    def useFixture_mock(self, obj, name, **kwargs):
        patcher = mock.patch.object(obj, name, **kwargs)
        mocked = patcher.start()
        self.addCleanup(patcher.stop)
        return mocked

    def _rebuilding(self, new_image):
        """An ACTIVE instance after nova-api accepted a rebuild: the new
        image_ref and task_state REBUILDING are already saved."""
        instance = self._create_fake_instance_obj(ctxt=self.ctxt)
        self.orig_image = instance.image_ref
        instance.image_ref = new_image
        instance.task_state = task_states.REBUILDING
        instance.save()
        return instance

    def _rebuild(self, instance, new_image, error=None, host=None):
        kwargs = dict(
            context=self.ctxt, instance=instance,
            orig_image_ref=self.orig_image, image_ref=new_image,
            injected_files=None, new_pass='pw', orig_sys_metadata={},
            bdms=objects.BlockDeviceMappingList(), recreate=False,
            on_shared_storage=False, preserve_ephemeral=False, host=host,
            request_spec=objects.RequestSpec(
                instance_uuid=instance.uuid, project_id=self.project_id,
                user_id=self.user_id, scheduler_hints={}))
        selection = objects.Selection(
            service_host=instance.host, nodename=instance.node, limits=None)
        with mock.patch.object(
                self.conductor.query_client, 'select_destinations',
                side_effect=error, return_value=[[selection]]) as select, \
                mock.patch.object(scheduler_utils, 'setup_instance_group'):
            if error:
                self.assertRaises(type(error), self.conductor.rebuild_instance,
                                  **kwargs)
            else:
                self.conductor.rebuild_instance(**kwargs)
        return select

    def _from_db(self, instance):
        return objects.Instance.get_by_uuid(self.ctxt, instance.uuid)

    def test_no_valid_host_keeps_original_image(self):
        instance = self._rebuilding(uuids.rejected_image)
        self._rebuild(instance, uuids.rejected_image,
                      exception.NoValidHost(reason='arch'))
        stored = self._from_db(instance)
        self.assertEqual(self.orig_image, stored.image_ref)
        self.assertEqual(vm_states.ERROR, stored.vm_state)
        self.assertFalse(self.rebuild_rpc.called)

    def test_unsupported_policy_keeps_original_image(self):
        instance = self._rebuilding(uuids.other_image)
        self._rebuild(instance, uuids.other_image,
                      exception.UnsupportedPolicyException(reason='group'))
        stored = self._from_db(instance)
        self.assertEqual(self.orig_image, stored.image_ref)
        self.assertEqual(vm_states.ERROR, stored.vm_state)

    def test_failed_rebuild_leaves_image_for_the_next_request(self):
        # Two failed rebuilds in a row with the same rejected image: the
        # second request starts from what the first one left in the DB, and
        # must still see the image the server was built from.
        instance = self._rebuilding(uuids.rejected_image)
        self._rebuild(instance, uuids.rejected_image,
                      exception.NoValidHost(reason='arch'))
        again = self._from_db(instance)
        self.assertEqual(self.orig_image, again.image_ref)
        again.image_ref = uuids.rejected_image
        again.task_state = task_states.REBUILDING
        again.save()
        self._rebuild(again, uuids.rejected_image,
                      exception.NoValidHost(reason='arch'))
        self.assertEqual(self.orig_image, self._from_db(instance).image_ref)

    def test_no_valid_host_sets_error(self):
        instance = self._rebuilding(uuids.rejected_image)
        self._rebuild(instance, uuids.rejected_image,
                      exception.NoValidHost(reason='arch'))
        stored = self._from_db(instance)
        self.assertEqual(vm_states.ERROR, stored.vm_state)
        self.assertIsNone(stored.task_state)

    def test_scheduled_rebuild_keeps_new_image(self):
        instance = self._rebuilding(uuids.good_image)
        select = self._rebuild(instance, uuids.good_image)
        self.assertTrue(select.called)
        self.assertTrue(self.rebuild_rpc.called)
        self.assertEqual(uuids.good_image, self._from_db(instance).image_ref)

    def test_same_image_rebuild_is_not_scheduled(self):
        instance = self._create_fake_instance_obj(ctxt=self.ctxt)
        self.orig_image = instance.image_ref
        select = self._rebuild(instance, instance.image_ref,
                               host=instance.host)
        self.assertFalse(select.called)
        self.assertTrue(self.rebuild_rpc.called)
        self.assertEqual(self.orig_image, self._from_db(instance).image_ref)
