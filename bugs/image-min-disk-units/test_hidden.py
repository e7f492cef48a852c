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

"""debuglab hidden tests: image min_disk vs. flavor / volume size.

Glance's ``min_disk`` is a size in GiB, like the flavor's ``root_gb`` and a
BDM's ``volume_size``.  These tests only check which requests are accepted
and which are refused (and with which exception class, since the REST layer
maps those to HTTP 400), never how the comparison is written.
"""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids
from oslo_utils import units
import webob

from nova.compute import api as compute_api
from nova import context
from nova import exception
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit.api.openstack.compute import test_servers


class ImageMinDiskTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.compute_api = compute_api.API()
        self.context = context.RequestContext('fake_user_id',
                                              'fake_project_id')

    @staticmethod
    def _flavor(root_gb):
        return objects.Flavor(
            id=1, flavorid='1', name='dl.flavor', memory_mb=512, vcpus=1,
            root_gb=root_gb, ephemeral_gb=0, swap=0, extra_specs={})

    @staticmethod
    def _image(min_disk, size=0):
        image = {'id': uuids.image_id, 'status': 'active', 'size': size,
                 'properties': {}}
        if min_disk is not None:
            image['min_disk'] = min_disk
        return image

    def _validate(self, flavor, image, root_bdm=None):
        self.compute_api._validate_flavor_image(
            self.context, image['id'], image, flavor, root_bdm)

    def test_flavor_disk_smaller_than_min_disk_is_refused(self):
        for root_gb, min_disk in ((1, 2), (10, 20), (20, 40), (80, 81),
                                  (1000, 1024)):
            self.assertRaises(
                exception.FlavorDiskSmallerThanMinDisk, self._validate,
                self._flavor(root_gb), self._image(min_disk))

    def test_min_disk_given_as_string_is_refused(self):
        # Glance hands min_disk over as a string in some code paths.
        self.assertRaises(
            exception.FlavorDiskSmallerThanMinDisk, self._validate,
            self._flavor(1), self._image('2'))

    def test_flavor_disk_large_enough_is_accepted(self):
        for root_gb, min_disk in ((1, 1), (2, 1), (20, 20), (40, 10),
                                  (1024, 1000)):
            self._validate(self._flavor(root_gb), self._image(min_disk))

    def test_no_min_disk_is_accepted(self):
        self._validate(self._flavor(1), self._image(0))
        self._validate(self._flavor(1), self._image(None))

    def test_image_size_check_still_in_bytes(self):
        flavor = self._flavor(1)
        self._validate(flavor, self._image(0, size=units.Gi))
        self.assertRaises(
            exception.FlavorDiskSmallerThanImage, self._validate,
            flavor, self._image(0, size=units.Gi + 1))

    def _volume_bdm(self, volume_size):
        return objects.BlockDeviceMapping(
            source_type='image', destination_type='volume',
            image_id=uuids.image_id, volume_id=uuids.volume_id,
            volume_size=volume_size)

    def test_volume_smaller_than_min_disk_is_refused(self):
        for volume_size, min_disk in ((1, 2), (10, 20), (1000, 1024)):
            self.assertRaises(
                exception.VolumeSmallerThanMinDisk, self._validate,
                self._flavor(1), self._image(min_disk),
                self._volume_bdm(volume_size))

    def test_volume_large_enough_is_accepted(self):
        # The flavor's root disk does not matter for a volume-backed root.
        for volume_size, min_disk in ((2, 2), (20, 10), (1024, 1000)):
            self._validate(self._flavor(1), self._image(min_disk),
                           self._volume_bdm(volume_size))


class RebuildMinDiskAPITest(test_servers._ServersControllerRebuildTest):
    """POST /servers/{id}/action {"rebuild": ...} through the controller.

    The fake server uses the m1.small flavor (20 GiB root disk).
    """

    def _image(self, min_disk):
        return dict(id=self.image_uuid, name='public image', is_public=True,
                    status='active', properties={}, min_ram=0,
                    min_disk=min_disk)

    def _rebuild(self):
        return self.controller._rebuild(self.req, test_servers.FAKE_UUID,
                                        body=self.body)

    def test_rebuild_with_image_needing_more_disk_is_400(self):
        for min_disk in (21, 40, 1000):
            with mock.patch.object(nova_fixtures.GlanceFixture, 'show',
                                   return_value=self._image(min_disk)):
                self.assertRaises(webob.exc.HTTPBadRequest, self._rebuild)

    def _assert_rebuild_accepted(self, min_disk):
        with mock.patch.object(nova_fixtures.GlanceFixture, 'show',
                               return_value=self._image(min_disk)):
            self._rebuild()

    def test_rebuild_with_image_min_disk_equal_to_flavor_is_accepted(self):
        self._assert_rebuild_accepted(20)

    def test_rebuild_with_image_min_disk_below_flavor_is_accepted(self):
        self._assert_rebuild_accepted(1)
