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

"""debuglab hidden tests: the tags of a server that could not be scheduled.

A server the scheduler cannot place is created in cell0 in ERROR. Everything
the user asked for that the API can show (its tags among them) must be there,
in cell0, where GET /servers/{id} reads it. The tests drive the conductor's
schedule_and_build_instances() with real cell databases (cell0 and cell1) and
read the result back from the databases, the way nova-api does.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import vm_states
from nova.conductor import manager as conductor_manager
from nova import context
from nova import exception
from nova import objects
from nova.tests.unit.compute import test_compute
from nova.tests.unit import fake_build_request
from nova.tests.unit import fake_request_spec


class BuriedServerTagsTest(test_compute.BaseTestCase):

    NUMBER_OF_CELLS = 2

    def setUp(self):
        super().setUp()
        self.conductor = conductor_manager.ComputeTaskManager()
        self.ctxt = context.RequestContext(
            'fake-user', 'fake-project').elevated()
        self.cell0 = objects.CellMapping.get_by_uuid(
            self.ctxt, objects.CellMapping.CELL0_UUID)
        notify = mock.patch(
            'nova.compute.utils.notify_about_compute_task_error')
        notify.start()
        self.addCleanup(notify.stop)

    def _params(self, num_instances=1, tags=('tag1',)):
        """What nova-api sends to schedule_and_build_instances()."""
        tag_list = objects.TagList(
            objects=[objects.Tag(self.ctxt, tag=t) for t in tags])
        build_requests, specs = [], []
        for _ in range(num_instances):
            br = fake_build_request.fake_req_obj(self.ctxt)
            del br.instance.id
            br.tags = tag_list
            br.create()
            build_requests.append(br)
            objects.InstanceMapping(
                self.ctxt, instance_uuid=br.instance_uuid, cell_mapping=None,
                project_id=self.ctxt.project_id).create()
            rs = fake_request_spec.fake_spec_obj(remove_id=True)
            rs._context = self.ctxt
            rs.instance_uuid = br.instance_uuid
            rs.instance_group = None
            rs.retry = None
            rs.limits = None
            rs.is_bfv = False
            rs.create()
            specs.append(rs)
        bdm = objects.BlockDeviceMapping(
            self.ctxt, source_type='image', destination_type='local',
            image_id=uuids.image, boot_index=0, delete_on_termination=True,
            device_name='/dev/vda', volume_size=None, no_device=False,
            connection_info=None, tag='')
        return dict(
            context=self.ctxt,
            build_requests=objects.BuildRequestList(objects=build_requests),
            request_specs=specs, image={'fake_data': 'should_pass_silently'},
            admin_password='admin_password', injected_files='injected_files',
            requested_networks=None,
            block_device_mapping=objects.BlockDeviceMappingList(
                objects=[bdm]),
            tags=tag_list)

    def _in_cell0(self, instance_uuid):
        with context.target_cell(self.ctxt, self.cell0) as cctxt:
            instance = objects.Instance.get_by_uuid(
                cctxt, instance_uuid, expected_attrs=['tags'])
            tags = objects.TagList.get_by_resource_id(cctxt, instance_uuid)
        return instance, sorted(t.tag for t in tags)

    def _schedule_fails(self, params, exc):
        with mock.patch('nova.scheduler.rpcapi.SchedulerAPI.'
                        'select_destinations', side_effect=exc) as select:
            self.conductor.schedule_and_build_instances(**params)
            self.assertTrue(select.called)

    def test_no_valid_host_keeps_tags(self):
        params = self._params()
        self._schedule_fails(params, exception.NoValidHost(reason='full'))
        uuid = params['build_requests'][0].instance_uuid
        instance, tags = self._in_cell0(uuid)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual(['tag1'], tags)
        self.assertEqual(['tag1'], sorted(t.tag for t in instance.tags))

    def test_no_valid_host_keeps_several_tags(self):
        params = self._params(tags=('web', 'prod', 'eu-1'))
        self._schedule_fails(params, exception.NoValidHost(reason='full'))
        instance, tags = self._in_cell0(
            params['build_requests'][0].instance_uuid)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual(['eu-1', 'prod', 'web'], tags)

    def test_multi_create_every_server_keeps_tags(self):
        params = self._params(num_instances=3, tags=('web', 'prod'))
        self._schedule_fails(params, exception.NoValidHost(reason='full'))
        for br in params['build_requests']:
            instance, tags = self._in_cell0(br.instance_uuid)
            self.assertEqual(vm_states.ERROR, instance.vm_state)
            self.assertEqual(['prod', 'web'], tags, br.instance_uuid)

    def test_any_scheduling_error_keeps_tags(self):
        params = self._params(tags=('db',))
        self._schedule_fails(params, exception.MaxRetriesExceeded(
            reason='no more hosts'))
        instance, tags = self._in_cell0(
            params['build_requests'][0].instance_uuid)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual(['db'], tags)

    def test_no_valid_host_without_tags(self):
        params = self._params(tags=())
        self._schedule_fails(params, exception.NoValidHost(reason='full'))
        instance, tags = self._in_cell0(
            params['build_requests'][0].instance_uuid)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual([], tags)

    def test_buried_server_is_gone_from_build_requests(self):
        params = self._params(tags=('web',))
        self._schedule_fails(params, exception.NoValidHost(reason='full'))
        uuid = params['build_requests'][0].instance_uuid
        self.assertRaises(exception.BuildRequestNotFound,
                          objects.BuildRequest.get_by_instance_uuid,
                          self.ctxt, uuid)
        mapping = objects.InstanceMapping.get_by_instance_uuid(self.ctxt, uuid)
        self.assertEqual(objects.CellMapping.CELL0_UUID,
                         mapping.cell_mapping.uuid)
