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

"""debuglab hidden tests: the scheduler hints `nova boot --hint` sends.

`--hint key=value` sends {key: value} in os:scheduler_hints; a key given more
than once sends the list of its values, in order.  The tests run `nova boot`
on python-novaclient's fake client and read the POST /servers body.
"""

import io
from unittest import mock

import fixtures

import novaclient.shell
from novaclient.tests.unit import utils
from novaclient.tests.unit.v2 import fakes

IMAGE = fakes.FAKE_IMAGE_UUID_1
GROUP = '2ad18108-5926-4441-91ae-0da30b72c332'
SERVER_A = 'a0cf03a5-d921-4877-bb5c-86d26cf818e1'
SERVER_B = '8c19174f-4220-44f0-824a-cd1eeef10287'


class BootHintsTest(utils.TestCase):
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

    def _boot(self, hints, version=None):
        cmd = []
        if version:
            cmd += ['--os-compute-api-version', version,
                    '--service-type', 'computev21']
        cmd += ['boot', '--image', IMAGE, '--flavor', '1']
        if version:
            cmd += ['--nic', 'none']
        for hint in hints:
            cmd += ['--hint', hint]
        cmd.append('some-server')
        with mock.patch('sys.stdout', io.StringIO()), \
                mock.patch('sys.stderr', io.StringIO()):
            self.shell.main(cmd)
        posts = [call[2] for call in self.shell.cs.client.callstack
                 if call[0] == 'POST' and call[1] == '/servers']
        self.assertEqual(1, len(posts))
        return posts[0]

    def test_group_hint(self):
        body = self._boot(['group=%s' % GROUP])
        self.assertEqual({'group': GROUP}, body['os:scheduler_hints'])

    def test_group_hint_latest_microversion(self):
        body = self._boot(['group=%s' % GROUP], version='2.96')
        self.assertEqual({'group': GROUP}, body['os:scheduler_hints'])

    def test_single_hints_keep_their_values(self):
        body = self._boot(['different_host=%s' % SERVER_A,
                           'query=[>=,$free_ram_mb,1024]',
                           'target_cell=cell1'])
        self.assertEqual({'different_host': SERVER_A,
                          'query': '[>=,$free_ram_mb,1024]',
                          'target_cell': 'cell1'},
                         body['os:scheduler_hints'])

    def test_value_with_equals_sign(self):
        body = self._boot(['cidr=/24', 'build_near_host_ip=10.0.0.1',
                           'custom=a=b'])
        self.assertEqual({'cidr': '/24', 'build_near_host_ip': '10.0.0.1',
                          'custom': 'a=b'}, body['os:scheduler_hints'])

    def test_repeated_and_single_hints(self):
        body = self._boot(['same_host=%s' % SERVER_A,
                           'group=%s' % GROUP,
                           'same_host=%s' % SERVER_B])
        self.assertEqual({'same_host': [SERVER_A, SERVER_B],
                          'group': GROUP},
                         body['os:scheduler_hints'])

    def test_repeated_hint_sends_all_values_in_order(self):
        body = self._boot(['different_host=%s' % SERVER_B,
                           'different_host=%s' % SERVER_A,
                           'different_host=%s' % GROUP])
        self.assertEqual({'different_host': [SERVER_B, SERVER_A, GROUP]},
                         body['os:scheduler_hints'])

    def test_no_hints_no_scheduler_hints(self):
        body = self._boot([])
        self.assertNotIn('os:scheduler_hints', body)
