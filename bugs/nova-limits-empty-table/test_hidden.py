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

"""debuglab hidden tests: the absolute limits table of `nova limits`.

The table shows one row per limit name with its Used and Max values (and an
Other column for limits the client does not know), exactly as the server sent
them.  The tests run the `limits` command (or print a Limits resource's
absolute limits, the way the command does) and read the printed table back.
"""

import io
from unittest import mock

import fixtures

import novaclient.shell
from novaclient.tests.unit import utils
from novaclient.tests.unit.v2 import fakes
from novaclient.v2 import limits as limits_mod
import novaclient.v2.shell


def _table_rows(text):
    """{first cell: [cells]} for every data row of the last table in text."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith('+'):
            continue
        if line.startswith('|'):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if current is None or cells[0] in ('Name', 'Verb'):
                current = {'header': cells, 'rows': {}}
                tables.append(current)
            else:
                current['rows'][cells[0]] = dict(zip(current['header'], cells))
    return tables[-1] if tables else {'header': [], 'rows': {}}


# What nova 34 answers at the newest microversions (GET /limits), trimmed.
NOVA_ABSOLUTE = {
    'maxTotalCores': 20, 'maxTotalInstances': 10, 'maxTotalKeypairs': 100,
    'maxServerMeta': 128, 'maxTotalRAMSize': 51200, 'maxServerGroups': 10,
    'maxServerGroupMembers': 10, 'totalRAMUsed': 1536, 'totalCoresUsed': 3,
    'totalInstancesUsed': 3, 'totalServerGroupsUsed': 1,
}


class AbsoluteLimitsTableTest(utils.TestCase):

    def _print(self, absolute):
        resource = limits_mod.Limits(mock.Mock(), {'rate': [],
                                                   'absolute': absolute})
        out = io.StringIO()
        with mock.patch('sys.stdout', out):
            # the command passes the resource's .absolute, a generator
            novaclient.v2.shell._print_absolute_limits(resource.absolute)
        return _table_rows(out.getvalue())

    def test_every_limit_has_its_row(self):
        table = self._print(NOVA_ABSOLUTE)
        self.assertEqual(
            ['Cores', 'Instances', 'Keypairs', 'RAM', 'Server Meta',
             'ServerGroupMembers', 'ServerGroups'],
            sorted(table['rows']))

    def test_used_and_max_values(self):
        rows = self._print(NOVA_ABSOLUTE)['rows']
        self.assertEqual(('3', '20'), (rows['Cores']['Used'],
                                       rows['Cores']['Max']))
        self.assertEqual(('1536', '51200'), (rows['RAM']['Used'],
                                             rows['RAM']['Max']))
        self.assertEqual(('3', '10'), (rows['Instances']['Used'],
                                       rows['Instances']['Max']))
        self.assertEqual(('1', '10'), (rows['ServerGroups']['Used'],
                                       rows['ServerGroups']['Max']))
        self.assertEqual(('-', '100'), (rows['Keypairs']['Used'],
                                        rows['Keypairs']['Max']))

    def test_unlimited_quota_is_shown(self):
        absolute = dict(NOVA_ABSOLUTE, maxTotalCores=-1, maxTotalRAMSize=-1)
        rows = self._print(absolute)['rows']
        self.assertEqual('-1', rows['Cores']['Max'])
        self.assertEqual('-1', rows['RAM']['Max'])
        self.assertEqual('1536', rows['RAM']['Used'])

    def test_no_other_column_for_known_limits(self):
        table = self._print(NOVA_ABSOLUTE)
        self.assertEqual(['Name', 'Used', 'Max'], table['header'])

    def test_unknown_limit_in_other_column(self):
        # an unknown limit the server lists first
        absolute = {'maxTotalWidgets': 7, **NOVA_ABSOLUTE}
        table = self._print(absolute)
        self.assertEqual(['Name', 'Used', 'Max', 'Other'], table['header'])
        self.assertEqual('7', table['rows']['maxTotalWidgets']['Other'])
        self.assertEqual(('1536', '51200'),
                         (table['rows']['RAM']['Used'],
                          table['rows']['RAM']['Max']))
        self.assertEqual('-', table['rows']['RAM']['Other'])

    def test_unknown_limit_given_last(self):
        absolute = dict(NOVA_ABSOLUTE)
        absolute['totalWidgetsUsed'] = 2
        table = self._print(absolute)
        self.assertIn('Other', table['header'])
        self.assertEqual('2', table['rows']['totalWidgetsUsed']['Other'])
        self.assertEqual(8, len(table['rows']))

    def test_list_of_limits(self):
        # callers may also hand over a plain list
        resource = limits_mod.Limits(mock.Mock(), {'rate': [],
                                                   'absolute': NOVA_ABSOLUTE})
        out = io.StringIO()
        with mock.patch('sys.stdout', out):
            novaclient.v2.shell._print_absolute_limits(
                list(resource.absolute))
        rows = _table_rows(out.getvalue())['rows']
        self.assertEqual(('3', '20'), (rows['Cores']['Used'],
                                       rows['Cores']['Max']))
        self.assertEqual(7, len(rows))


class LimitsCommandTest(utils.TestCase):
    FAKE_ENV = {
        'NOVA_USERNAME': 'username',
        'NOVA_PASSWORD': 'password',
        'NOVA_PROJECT_ID': 'project_id',
        'OS_COMPUTE_API_VERSION': '2',
        'NOVA_URL': 'http://no.where',
        'OS_AUTH_URL': 'http://no.where/v3',
    }

    def setUp(self):
        super().setUp()
        for var, value in self.FAKE_ENV.items():
            self.useFixture(fixtures.EnvironmentVariable(var, value))
        self.shell = novaclient.shell.OpenStackComputeShell()
        self.useFixture(fixtures.MonkeyPatch(
            'novaclient.client.Client', fakes.FakeClient))

    def _run(self, cmd):
        out = io.StringIO()
        with mock.patch('sys.stdout', out), \
                mock.patch('sys.stderr', io.StringIO()):
            self.shell.main(cmd.split())
        return out.getvalue()

    def test_limits_command_prints_absolute_limits(self):
        out = self._run('--os-compute-api-version 2.57 '
                        '--service-type computev21 limits')
        rows = _table_rows(out)['rows']
        self.assertEqual({'RAM', 'Server Meta', 'ImageMeta'}, set(rows))
        self.assertEqual('51200', rows['RAM']['Max'])
        self.assertEqual('5', rows['Server Meta']['Max'])
        self.assertEqual('-', rows['RAM']['Used'])

    def test_limits_command_old_microversion(self):
        out = self._run('limits')
        rows = _table_rows(out)['rows']
        self.assertEqual('5', rows['Personality']['Max'])
        self.assertEqual('10240', rows['Personality Size']['Max'])
        self.assertEqual(5, len(rows))
