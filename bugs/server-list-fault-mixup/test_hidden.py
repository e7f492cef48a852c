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

"""debuglab hidden tests: InstanceList.fill_faults.

GET /servers/detail fills every listed instance's fault with one batch query
per cell (InstanceList.fill_faults): each instance must get its own latest
fault, and an instance without a fault gets None, whatever the order and the
cells the faults come from.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova import context
from nova import objects
from nova import test


def _fault(instance_uuid, message, fault_id):
    fault = objects.InstanceFault(
        id=fault_id, instance_uuid=instance_uuid, code=500,
        message=message, details='', host='compute1')
    fault.obj_reset_changes()
    return fault


class FillFaultsTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.context = context.RequestContext('fake-user', 'fake-project')

    def _list(self, *instance_uuids):
        inst_list = objects.InstanceList()
        inst_list._context = self.context
        inst_list.objects = [objects.Instance(uuid=u) for u in instance_uuids]
        for inst in inst_list:
            inst.obj_reset_changes()
        return inst_list

    @staticmethod
    def _messages(inst_list):
        return [inst.fault.message if inst.fault is not None else None
                for inst in inst_list]

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_each_instance_gets_its_own_fault(self, mock_sg):
        inst_list = self._list(uuids.a, uuids.b, uuids.c)
        # newest first, as the DB API returns them
        mock_sg.return_value = {uuids.cell1: objects.InstanceFaultList(objects=[
            _fault(uuids.c, 'fault of c', 3),
            _fault(uuids.b, 'fault of b', 2),
            _fault(uuids.a, 'fault of a', 1)])}
        inst_list.fill_faults()
        self.assertEqual(['fault of a', 'fault of b', 'fault of c'],
                         self._messages(inst_list))

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_two_faults_order_does_not_matter(self, mock_sg):
        for order in ((0, 1), (1, 0)):
            inst_list = self._list(uuids.a, uuids.b)
            faults = [_fault(uuids.a, 'No valid host was found. ', 11),
                      _fault(uuids.b, 'Build of instance aborted', 12)]
            mock_sg.return_value = {uuids.cell1: objects.InstanceFaultList(
                objects=[faults[i] for i in order])}
            inst_list.fill_faults()
            self.assertEqual(['No valid host was found. ',
                              'Build of instance aborted'],
                             self._messages(inst_list))
            self.assertEqual(11, inst_list[0].fault.id)
            self.assertEqual(12, inst_list[1].fault.id)

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_instance_without_fault_between_others(self, mock_sg):
        inst_list = self._list(uuids.a, uuids.ok, uuids.b)
        mock_sg.return_value = {uuids.cell1: objects.InstanceFaultList(objects=[
            _fault(uuids.a, 'fault of a', 1),
            _fault(uuids.b, 'fault of b', 2)])}
        faulty = inst_list.fill_faults()
        self.assertEqual(['fault of a', None, 'fault of b'],
                         self._messages(inst_list))
        self.assertEqual({uuids.a, uuids.b}, set(faulty))
        for inst in inst_list:
            self.assertEqual(set(), inst.obj_what_changed())

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_faults_from_cell0_and_cell1(self, mock_sg):
        # servers that never got a host have their fault in cell0
        inst_list = self._list(uuids.built, uuids.buried1, uuids.buried2)
        mock_sg.return_value = {
            uuids.cell0: objects.InstanceFaultList(objects=[
                _fault(uuids.buried2, 'No valid host was found. ', 22),
                _fault(uuids.buried1,
                       'No valid host was found. No such host', 21)]),
            uuids.cell1: objects.InstanceFaultList(objects=[
                _fault(uuids.built, 'Instance failed to spawn', 7)]),
        }
        inst_list.fill_faults()
        self.assertEqual(['Instance failed to spawn',
                          'No valid host was found. No such host',
                          'No valid host was found. '],
                         self._messages(inst_list))

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_cell_without_faults_after_one_with_faults(self, mock_sg):
        inst_list = self._list(uuids.a, uuids.b, uuids.c)
        mock_sg.return_value = {
            uuids.cell1: objects.InstanceFaultList(objects=[
                _fault(uuids.b, 'fault of b', 2),
                _fault(uuids.a, 'fault of a', 1)]),
            uuids.cell2: objects.InstanceFaultList(objects=[]),
            uuids.cell3: context.did_not_respond_sentinel,
        }
        inst_list.fill_faults()
        self.assertEqual(['fault of a', 'fault of b', None],
                         self._messages(inst_list))

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_single_fault(self, mock_sg):
        inst_list = self._list(uuids.a, uuids.b)
        mock_sg.return_value = {uuids.cell1: objects.InstanceFaultList(
            objects=[_fault(uuids.a, 'fault of a', 1)])}
        faulty = inst_list.fill_faults()
        self.assertEqual(['fault of a', None], self._messages(inst_list))
        self.assertEqual([uuids.a], list(faulty))

    @mock.patch('nova.context.scatter_gather_all_cells')
    def test_no_faults(self, mock_sg):
        inst_list = self._list(uuids.a, uuids.b)
        mock_sg.return_value = {uuids.cell1: objects.InstanceFaultList(
            objects=[])}
        faulty = inst_list.fill_faults()
        self.assertEqual([None, None], self._messages(inst_list))
        self.assertEqual([], list(faulty))
