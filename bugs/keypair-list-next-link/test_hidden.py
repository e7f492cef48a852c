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

"""debuglab hidden tests: paging through key pairs (microversion 2.35+).

Documented behaviour (api-ref, "List Keypairs"): with ``limit`` the response
carries ``keypairs_links``, a "next" link that returns the following page.
The tests send real requests through nova's WSGI router and follow the link
they get back, so any fix that makes the link work passes.
"""

from unittest import mock
import urllib.parse

from oslo_serialization import jsonutils
import webob

from nova import test
from nova.tests.unit.api.openstack import fakes
from nova.tests.unit.objects import test_keypair


NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo']


def _keypair(name):
    return dict(test_keypair.fake_keypair, name=name,
                public_key='ssh-rsa FAKE', fingerprint='FAKE:' + name)


def _fake_get_from_db(context, user_id, name=None, limit=None, marker=None):
    rows = [_keypair(n) for n in NAMES]
    if marker is not None:
        names = [r['name'] for r in rows]
        rows = rows[names.index(marker) + 1:]
    if limit is not None:
        rows = rows[:limit]
    return rows


class KeypairPagingLinksTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.app = fakes.wsgi_app_v21()
        patcher = mock.patch('nova.objects.keypair._get_from_db',
                             side_effect=_fake_get_from_db)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _get(self, url, version='2.35'):
        req = webob.Request.blank(url)
        req.headers['OpenStack-API-Version'] = 'compute %s' % version
        res = req.get_response(self.app)
        return res

    def _get_ok(self, url, version='2.35'):
        res = self._get(url, version)
        self.assertEqual(200, res.status_int,
                         'GET %s answered %s' % (url, res.status))
        return jsonutils.loads(res.body)

    @staticmethod
    def _names(body):
        return [kp['keypair']['name'] for kp in body['keypairs']]

    @staticmethod
    def _next(body):
        links = body.get('keypairs_links', [])
        hrefs = [link['href'] for link in links if link.get('rel') == 'next']
        return hrefs[0] if hrefs else None

    def test_next_link_returns_the_next_page(self):
        body = self._get_ok('/v2.1/os-keypairs?limit=2')
        self.assertEqual(['alpha', 'bravo'], self._names(body))
        href = self._next(body)
        self.assertIsNotNone(href, 'no next link in %s' % body)
        body = self._get_ok(href)
        self.assertEqual(['charlie', 'delta'], self._names(body))

    def test_following_links_lists_every_keypair_once(self):
        seen = []
        url = '/v2.1/os-keypairs?limit=1'
        for _ in range(len(NAMES) + 2):
            body = self._get_ok(url)
            seen.extend(self._names(body))
            url = self._next(body)
            if url is None:
                break
        self.assertEqual(NAMES, seen)

    def test_next_link_keeps_limit_and_uses_last_name_as_marker(self):
        body = self._get_ok('/v2.1/os-keypairs?limit=3')
        href = self._next(body)
        self.assertIsNotNone(href)
        parts = urllib.parse.urlsplit(href)
        query = urllib.parse.parse_qs(parts.query)
        self.assertEqual(['3'], query.get('limit'))
        self.assertEqual(['charlie'], query.get('marker'))

    def test_next_link_points_at_the_requested_collection(self):
        body = self._get_ok('/v2.1/os-keypairs?limit=2')
        href = self._next(body)
        self.assertIsNotNone(href)
        path = urllib.parse.urlsplit(href).path
        self.assertEqual('/v2.1/os-keypairs', path.rstrip('/'))

    def test_next_link_with_later_microversion(self):
        body = self._get_ok('/v2.1/os-keypairs?limit=4', version='2.92')
        self.assertEqual(NAMES[:4], self._names(body))
        body = self._get_ok(self._next(body), version='2.92')
        self.assertEqual(['echo'], self._names(body))

    def test_no_next_link_when_the_page_is_not_full(self):
        body = self._get_ok('/v2.1/os-keypairs?limit=10')
        self.assertEqual(NAMES, self._names(body))
        self.assertIsNone(self._next(body))

    def test_no_links_before_2_35(self):
        body = self._get_ok('/v2.1/os-keypairs', version='2.34')
        self.assertEqual(NAMES, self._names(body))
        self.assertNotIn('keypairs_links', body)
