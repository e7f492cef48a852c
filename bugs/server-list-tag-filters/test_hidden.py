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

"""debuglab hidden tests: server list tag filters across cells.

GET /servers runs the same instance query in every cell (cell0 and each real
cell) with the same filters. The tag filters (tags, tags-any, not-tags,
not-tags-any) must mean the same thing in every cell and on every call, and a
query must leave the caller's filters as it found them. The tests call the DB
API several times with one filters dict, and the cross-cell instance lister
with instances in cell1 and in cell0, and compare the uuids returned.
"""

import copy

from nova.compute import instance_list
from nova import context
from nova.db.main import api as db
from nova import objects
from nova import test


class TagFiltersStableTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.ctxt = context.RequestContext('user1', 'project1')
        # uuid -> tags
        self.tags = {}
        for tags in (['t1', 't2'], ['t1'], ['t2'], ['t1', 't2', 't3'], []):
            uuid = db.instance_create(
                self.ctxt, {'project_id': 'project1'})['uuid']
            db.instance_tag_set(self.ctxt, uuid, tags)
            self.tags[uuid] = set(tags)

    def _expected(self, key, wanted):
        wanted = set(wanted)
        match = {
            'tags': lambda t: wanted <= t,
            'tags-any': lambda t: bool(wanted & t),
            'not-tags': lambda t: not wanted <= t,
            'not-tags-any': lambda t: not wanted & t,
        }[key]
        return sorted(u for u, t in self.tags.items() if match(t))

    def _query(self, filters):
        return sorted(i['uuid'] for i in
                      db.instance_get_all_by_filters_sort(self.ctxt, filters))

    def _check_repeated(self, key, wanted):
        filters = {key: list(wanted)}
        expected = self._expected(key, wanted)
        for call in range(3):
            self.assertEqual(expected, self._query(filters),
                             '%s=%s, call %d' % (key, wanted, call + 1))

    def test_tags_filter_same_result_every_call(self):
        self._check_repeated('tags', ['t1', 't2'])
        self._check_repeated('tags', ['t1'])
        self._check_repeated('tags', ['t1', 't2', 't3'])

    def test_not_tags_filter_same_result_every_call(self):
        self._check_repeated('not-tags', ['t1', 't2'])
        self._check_repeated('not-tags', ['t2'])

    def test_any_filters_same_result_every_call(self):
        self._check_repeated('tags-any', ['t1', 't3'])
        self._check_repeated('not-tags-any', ['t3'])

    def test_query_leaves_callers_filters_alone(self):
        filters = {'tags': ['t1', 't2'], 'not-tags': ['t3', 't1'],
                   'tags-any': ['t1'], 'not-tags-any': ['t9'],
                   'project_id': 'project1', 'deleted': False}
        before = copy.deepcopy(filters)
        self._query(filters)
        self.assertEqual(before, filters)

    def test_combined_filters(self):
        filters = {'tags': ['t1'], 'not-tags': ['t2', 't3']}
        expected = sorted(u for u, t in self.tags.items()
                          if 't1' in t and not {'t2', 't3'} <= t)
        self.assertEqual(expected, self._query(filters))
        self.assertEqual(expected, self._query(filters))


class TagFiltersAcrossCellsTest(test.TestCase):
    """The instance list of GET /servers: one query per cell, same filters."""

    def setUp(self):
        super().setUp()
        self.ctxt = context.RequestContext('user1', 'project1')
        self.cells = objects.CellMappingList.get_all(self.ctxt)
        self.assertEqual(2, len(self.cells))  # cell0 and cell1
        cell0 = [c for c in self.cells if c.is_cell0()][0]
        cell1 = [c for c in self.cells if not c.is_cell0()][0]
        self.tags = {}
        # Servers that failed to schedule live in cell0, the others in cell1.
        for cell, tag_sets in ((cell1, (['a', 'b'], ['a'], ['b'], [])),
                               (cell0, (['a', 'b'], ['b']))):
            with context.target_cell(self.ctxt, cell) as cctxt:
                for tags in tag_sets:
                    uuid = db.instance_create(
                        cctxt, {'project_id': 'project1'})['uuid']
                    db.instance_tag_set(cctxt, uuid, tags)
                    self.tags[uuid] = set(tags)

    def _list(self, filters):
        insts, down = instance_list.get_instance_objects_sorted(
            self.ctxt, filters, None, None, [], None, None)
        self.assertEqual([], down, 'a cell failed to answer %s' % filters)
        return sorted(i.uuid for i in insts)

    def _expected(self, match):
        return sorted(u for u, t in self.tags.items() if match(t))

    def test_tags_all_of(self):
        self.assertEqual(self._expected(lambda t: {'a', 'b'} <= t),
                         self._list({'tags': ['a', 'b']}))

    def test_single_tag(self):
        self.assertEqual(self._expected(lambda t: 'a' in t),
                         self._list({'tags': ['a']}))

    def test_not_tags(self):
        self.assertEqual(self._expected(lambda t: not {'a', 'b'} <= t),
                         self._list({'not-tags': ['a', 'b']}))

    def test_not_tags_single(self):
        self.assertEqual(self._expected(lambda t: 'b' not in t),
                         self._list({'not-tags': ['b']}))

    def test_tags_any(self):
        self.assertEqual(self._expected(lambda t: bool({'a', 'b'} & t)),
                         self._list({'tags-any': ['a', 'b']}))

    def test_no_tag_filter(self):
        self.assertEqual(sorted(self.tags), self._list({}))
