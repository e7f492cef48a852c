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

"""debuglab hidden tests: the scheduler's view of host aggregates.

nova-api tells the scheduler about every aggregate change (add/remove host,
metadata, delete) with an RPC cast that carries the aggregate as it is now.
Over RPC each cast delivers a *new* Aggregate object (serialised and
deserialised), never the object the scheduler got last time; the tests do the
same with obj_to_primitive/obj_from_primitive. They then look at what the
filters see: HostState.aggregates of each host, and the verdict of
AggregateMultiTenancyIsolation.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova import context as nova_context
from nova import objects
from nova.objects import base as obj_base
from nova.scheduler.filters import aggregate_multitenancy_isolation as amti
from nova.scheduler import host_manager
from nova import test


def _over_rpc(obj):
    """The copy a scheduler gets when obj is cast to it."""
    return obj_base.NovaObject.obj_from_primitive(obj.obj_to_primitive())


class SchedulerAggregateViewTest(test.NoDBTestCase):

    @mock.patch.object(host_manager.HostManager, '_init_instance_info')
    @mock.patch.object(host_manager.HostManager, '_init_aggregates')
    def setUp(self, mock_init_agg, mock_init_inst):
        super().setUp()
        self.hm = host_manager.HostManager()
        self.ctxt = nova_context.get_admin_context()
        for target, value in (
                ('nova.objects.InstanceList.get_uuids_by_host', []),
                ('nova.scheduler.host_manager.HostState.'
                 '_update_from_compute_node', None)):
            patcher = mock.patch(target, return_value=value)
            patcher.start()
            self.addCleanup(patcher.stop)

    # what nova-api sends -------------------------------------------------

    @staticmethod
    def _agg(agg_id, hosts, **metadata):
        return objects.Aggregate(id=agg_id, uuid=getattr(uuids, 'agg%d' % agg_id),
                                 name='agg%d' % agg_id, hosts=list(hosts),
                                 metadata=metadata)

    def _update(self, *aggs):
        self.hm.update_aggregates(
            objects.AggregateList(objects=[_over_rpc(a) for a in aggs]))

    def _delete(self, agg):
        self.hm.delete_aggregate(_over_rpc(agg))

    # what the filters see ------------------------------------------------

    def _state(self, host):
        compute = objects.ComputeNode(uuid=getattr(uuids, host), host=host,
                                      hypervisor_hostname=host)
        services = {host: objects.Service(host=host, disabled=False)}
        states = list(self.hm._get_host_states(
            self.ctxt, {uuids.cell: [compute]}, services))
        self.assertEqual(1, len(states))
        return states[0]

    def _aggregates_of(self, host):
        return sorted(agg.name for agg in self._state(host).aggregates)

    def _tenant_passes(self, host, project_id):
        spec = objects.RequestSpec(project_id=project_id)
        return amti.AggregateMultiTenancyIsolation().host_passes(
            self._state(host), spec)

    # a host leaves an aggregate --------------------------------------------

    def test_host_removed_from_its_only_aggregate(self):
        agg = self._agg(1, ['h1'], filter_tenant_id='tenant-a')
        self._update(agg)
        self.assertEqual(['agg1'], self._aggregates_of('h1'))
        agg.hosts = []
        self._update(agg)
        self.assertEqual([], self._aggregates_of('h1'))
        self.assertEqual([], self._aggregates_of('h1'))  # and it stays out

    def test_one_of_two_hosts_removed(self):
        agg = self._agg(1, ['h1', 'h2'])
        self._update(agg)
        agg.hosts = ['h2']
        self._update(agg)
        self.assertEqual([], self._aggregates_of('h1'))
        self.assertEqual(['agg1'], self._aggregates_of('h2'))

    def test_host_removed_from_one_of_two_aggregates(self):
        agg1 = self._agg(1, ['h1'])
        agg2 = self._agg(2, ['h1'])
        self._update(agg1, agg2)
        self.assertEqual(['agg1', 'agg2'], self._aggregates_of('h1'))
        agg1.hosts = []
        self._update(agg1)
        self.assertEqual(['agg2'], self._aggregates_of('h1'))

    def test_other_tenant_may_use_host_after_it_left_isolated_aggregate(self):
        agg = self._agg(1, ['h1'], filter_tenant_id='tenant-a')
        self._update(agg)
        self.assertFalse(self._tenant_passes('h1', 'tenant-b'))
        self.assertTrue(self._tenant_passes('h1', 'tenant-a'))
        agg.hosts = []
        self._update(agg)
        self.assertTrue(self._tenant_passes('h1', 'tenant-b'))

    # changes that must keep working ----------------------------------------

    def test_host_added_to_aggregate(self):
        agg = self._agg(1, [])
        self._update(agg)
        self.assertEqual([], self._aggregates_of('h1'))
        agg.hosts = ['h1']
        self._update(agg)
        self.assertEqual(['agg1'], self._aggregates_of('h1'))

    def test_host_added_back_after_removal(self):
        agg = self._agg(1, ['h1'])
        self._update(agg)
        agg.hosts = []
        self._update(agg)
        agg.hosts = ['h1']
        self._update(agg)
        self.assertEqual(['agg1'], self._aggregates_of('h1'))

    def test_metadata_change_reaches_the_filters(self):
        agg = self._agg(1, ['h1'], filter_tenant_id='tenant-a')
        self._update(agg)
        agg.metadata = {'filter_tenant_id': 'tenant-b'}
        self._update(agg)
        self.assertTrue(self._tenant_passes('h1', 'tenant-b'))
        self.assertFalse(self._tenant_passes('h1', 'tenant-a'))

    def test_isolated_host_refuses_other_tenants(self):
        self._update(self._agg(1, ['h1'], filter_tenant_id='tenant-a'))
        self._update(self._agg(2, ['h2']))
        self.assertFalse(self._tenant_passes('h1', 'tenant-b'))
        self.assertTrue(self._tenant_passes('h2', 'tenant-b'))

    def test_removed_then_deleted_aggregate(self):
        agg = self._agg(1, ['h1'], filter_tenant_id='tenant-a')
        self._update(agg)
        agg.hosts = []
        self._update(agg)
        self._delete(agg)
        self.assertEqual([], self._aggregates_of('h1'))
        self.assertTrue(self._tenant_passes('h1', 'tenant-b'))

    def test_same_object_updated_in_place(self):
        # a caller in the same process may hand the same object again
        agg = self._agg(1, ['h1', 'h2'])
        self.hm.update_aggregates([agg])
        agg.hosts = ['h2']
        self.hm.update_aggregates([agg])
        self.assertEqual([], self._aggregates_of('h1'))
        self.assertEqual(['agg1'], self._aggregates_of('h2'))

    def test_single_aggregate_not_in_a_list(self):
        agg = self._agg(1, ['h1'])
        self.hm.update_aggregates(_over_rpc(agg))
        self.assertEqual(['agg1'], self._aggregates_of('h1'))
