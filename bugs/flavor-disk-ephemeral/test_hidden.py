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

"""debuglab hidden tests: flavor sizes reported by the flavors API.

These tests drive the real FlavorsController (show / detail / create) and
only look at the response body, so any fix that makes the API report the
right numbers passes.
"""

from nova.api.openstack.compute import flavors
from nova import objects
from nova import test
from nova.tests.unit.api.openstack import fakes


# Microversions that change the shape of the flavor body.
MICROVERSIONS = ('2.1', '2.55', '2.61', '2.75', '2.102')


def _flavor(flavorid, name, root_gb, ephemeral_gb, swap):
    return objects.Flavor(
        id=int(flavorid), flavorid=flavorid, name=name, memory_mb=2048,
        vcpus=1, root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap,
        rxtx_factor=1.0, vcpu_weight=None, disabled=False, is_public=True,
        description=None, extra_specs={})


# Each flavor has distinct root, ephemeral and swap sizes so that any mix-up
# between the fields is visible.
FLAVORS = {
    '101': _flavor('101', 'dl.small', root_gb=20, ephemeral_gb=0, swap=0),
    '102': _flavor('102', 'dl.medium', root_gb=40, ephemeral_gb=5, swap=512),
    '103': _flavor('103', 'dl.zero', root_gb=0, ephemeral_gb=7, swap=0),
}


class FlavorDiskReportingTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()

        @classmethod
        def fake_get_by_flavor_id(cls, context, flavor_id,
                                  read_deleted=None):
            return FLAVORS[flavor_id]

        @staticmethod
        def fake_get_all(context, inactive=False, filters=None,
                         sort_key='flavorid', sort_dir='asc', limit=None,
                         marker=None):
            return objects.FlavorList(
                objects=[FLAVORS[k] for k in sorted(FLAVORS)])

        self.stub_out('nova.objects.Flavor.get_by_flavor_id',
                      fake_get_by_flavor_id)
        self.stub_out('nova.objects.FlavorList.get_all', fake_get_all)
        self.controller = flavors.FlavorsController()

    def _req(self, url, version, admin=False):
        return fakes.HTTPRequestV21.blank(
            url, version=version, base_url='http://localhost/v2.1',
            use_admin_context=admin)

    def _assert_sizes(self, body, flavor, version):
        msg = 'microversion %s, flavor %s' % (version, flavor.name)
        self.assertEqual(flavor.root_gb, body['disk'], msg)
        self.assertEqual(flavor.ephemeral_gb,
                         body['OS-FLV-EXT-DATA:ephemeral'], msg)
        self.assertEqual(flavor.memory_mb, body['ram'], msg)

    def test_show_reports_root_disk(self):
        for version in MICROVERSIONS:
            for flavorid, flavor in FLAVORS.items():
                req = self._req('/flavors/%s' % flavorid, version)
                body = self.controller.show(req, flavorid)['flavor']
                self._assert_sizes(body, flavor, version)

    def test_show_small_flavor_without_ephemeral(self):
        # The classic "openstack flavor show m1.small" case.
        req = self._req('/flavors/101', '2.1')
        body = self.controller.show(req, '101')['flavor']
        self.assertEqual(20, body['disk'])
        self.assertEqual(0, body['OS-FLV-EXT-DATA:ephemeral'])

    def test_show_flavor_with_ephemeral_disk(self):
        # "openstack flavor create --disk 40 --ephemeral 5 --swap 512"
        for version in MICROVERSIONS:
            req = self._req('/flavors/102', version)
            body = self.controller.show(req, '102')['flavor']
            self.assertEqual(40, body['disk'], version)
            self.assertEqual(5, body['OS-FLV-EXT-DATA:ephemeral'], version)

    def test_show_volume_flavor_with_ephemeral_disk(self):
        # A flavor for volume-backed servers: no local root disk.
        for version in MICROVERSIONS:
            req = self._req('/flavors/103', version)
            body = self.controller.show(req, '103')['flavor']
            self.assertEqual(0, body['disk'], version)
            self.assertEqual(7, body['OS-FLV-EXT-DATA:ephemeral'], version)

    def test_update_response_reports_root_disk(self):
        self.stub_out('nova.objects.Flavor.save', lambda flavor: None)
        for version in ('2.55', '2.75', '2.102'):
            req = self._req('/flavors/102', version, admin=True)
            req.method = 'PUT'
            body = self.controller.update(
                req, '102', body={'flavor': {'description': 'db'}})['flavor']
            self._assert_sizes(body, FLAVORS['102'], version)

    def test_detail_reports_root_disk(self):
        for version in MICROVERSIONS:
            req = self._req('/flavors/detail', version)
            body = self.controller.detail(req)
            self.assertEqual(len(FLAVORS), len(body['flavors']))
            for item in body['flavors']:
                self._assert_sizes(item, FLAVORS[item['id']], version)

    def test_create_response_reports_requested_sizes(self):
        def fake_create(flavor):
            # Stand-in for the DB write: fill in what the DB would default.
            flavor.id = 4242
            flavor.disabled = False

        self.stub_out('nova.objects.Flavor.create', fake_create)
        for version in ('2.1', '2.75'):
            body = {'flavor': {
                'name': 'dl.created', 'ram': 1024, 'vcpus': 2,
                'disk': 25, 'OS-FLV-EXT-DATA:ephemeral': 3, 'swap': 256,
                'id': '4242'}}
            req = self._req('/flavors', version, admin=True)
            resp = self.controller.create(req, body=body)['flavor']
            self.assertEqual(25, resp['disk'], version)
            self.assertEqual(3, resp['OS-FLV-EXT-DATA:ephemeral'], version)
            self.assertEqual(256, resp['swap'], version)
