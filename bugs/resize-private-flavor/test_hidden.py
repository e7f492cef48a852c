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

"""debuglab hidden tests: resize honours flavor access.

Documented behaviour (admin guide, "Manage flavors" / flavor access): a
private flavor can be used only by the projects on its access list (and by
admins). A resize to a flavor the caller cannot see fails like a resize to a
flavor that does not exist: FlavorNotFound, which the API turns into 400.

The tests call nova.compute.api.API.resize() with a real database (flavors in
the API DB, the instance in cell1) and a project member's context, and only
look at what resize does: the exception, the instance's task_state, and the
flavor handed to the conductor.
"""

from unittest import mock

from nova import context
from nova import exception
from nova import objects
from nova.tests.unit.compute import test_compute


OTHER_PROJECT = 'other-project'


@mock.patch('nova.servicegroup.api.API.service_is_up',
            new=mock.Mock(return_value=True))
@mock.patch('nova.compute.api.API._validate_flavor_image_nostatus',
            new=mock.Mock())
@mock.patch('nova.objects.RequestSpec', new=mock.MagicMock())
class ResizeFlavorAccessTest(test_compute.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.admin = context.get_admin_context()
        self.instance = self._create_fake_instance_obj(services=True)
        patcher = mock.patch(
            'nova.conductor.api.ComputeTaskAPI.resize_instance')
        self.resize_instance = patcher.start()
        self.addCleanup(patcher.stop)
        # the user's context is a plain project member, never an admin
        self.assertFalse(self.context.is_admin)

    def _flavor(self, flavorid, public=False, projects=()):
        flavor = objects.Flavor(
            context=self.admin, name='dl-' + flavorid, flavorid=flavorid,
            memory_mb=1024, vcpus=1, root_gb=1, ephemeral_gb=0, swap=0,
            rxtx_factor=1.0, vcpu_weight=0, disabled=False, is_public=public)
        flavor.create()
        for project in projects:
            flavor.add_access(project)
        return flavor

    def _resized_to(self):
        self.resize_instance.assert_called_once()
        return self.resize_instance.call_args[1]['flavor'].flavorid

    def _task_state(self):
        return objects.Instance.get_by_uuid(
            self.admin, self.instance.uuid).task_state

    def test_private_flavor_of_another_project_is_refused(self):
        self._flavor('theirs', projects=[OTHER_PROJECT])
        self.assertRaises(exception.FlavorNotFound,
                          self.compute_api.resize, self.context,
                          self.instance, 'theirs')
        self.resize_instance.assert_not_called()
        self.assertIsNone(self._task_state())

    def test_private_flavor_without_access_list_is_refused(self):
        self._flavor('nobodys')
        self.assertRaises(exception.FlavorNotFound,
                          self.compute_api.resize, self.context,
                          self.instance, 'nobodys')
        self.resize_instance.assert_not_called()

    def test_access_list_decides_between_two_private_flavors(self):
        self._flavor('theirs', projects=[OTHER_PROJECT])
        self._flavor('ours', projects=[self.project_id, OTHER_PROJECT])
        self.assertRaises(exception.FlavorNotFound,
                          self.compute_api.resize, self.context,
                          self.instance, 'theirs')
        self.resize_instance.assert_not_called()
        self.compute_api.resize(self.context, self.instance, 'ours')
        self.assertEqual('ours', self._resized_to())

    def test_private_flavor_shared_with_the_project_is_accepted(self):
        self._flavor('ours', projects=[self.project_id])
        self.compute_api.resize(self.context, self.instance, 'ours')
        self.assertEqual('ours', self._resized_to())

    def test_public_flavor_is_accepted(self):
        self._flavor('public', public=True)
        self.compute_api.resize(self.context, self.instance, 'public')
        self.assertEqual('public', self._resized_to())

    def test_admin_can_resize_to_any_private_flavor(self):
        self._flavor('theirs', projects=[OTHER_PROJECT])
        admin = context.RequestContext(self.user_id, self.project_id,
                                       is_admin=True)
        self.compute_api.resize(admin, self.instance, 'theirs')
        self.assertEqual('theirs', self._resized_to())

    def test_unknown_flavor_is_refused(self):
        self.assertRaises(exception.FlavorNotFound,
                          self.compute_api.resize, self.context,
                          self.instance, 'no-such-flavor')
        self.resize_instance.assert_not_called()

    @mock.patch('nova.compute.api.API._allow_resize_to_same_host',
                return_value=False)
    def test_migrate_keeps_the_current_flavor(self, mock_same_host):
        self.compute_api.resize(self.context, self.instance)
        self.assertEqual(self.instance.flavor.flavorid, self._resized_to())
