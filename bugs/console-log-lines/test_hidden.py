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

"""debuglab hidden tests: ComputeManager.get_console_output with a length.

Documented behaviour (API reference, os-getConsoleOutput): "length" is the
number of lines to fetch from the end of the console log; the compute
service returns text. The tests only call get_console_output() with a
driver that returns text or bytes and check the string that comes back.
"""

from unittest import mock

import fixtures

from nova.compute import manager
from nova import context
from nova import test
from nova.tests.unit import fake_instance

LOG_TEXT = 'boot line 1\nboot line 2\nlogin: \nlast line'
LOG_BYTES = LOG_TEXT.encode('ascii')


class ConsoleOutputTailTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.compute = manager.ComputeManager()
        self.context = context.get_admin_context()
        self.instance = fake_instance.fake_instance_obj(self.context)
        # a failure would try to record an instance fault in the database
        self.useFixture(fixtures.MockPatch(
            'nova.compute.utils.add_instance_fault_from_exc'))

    def _output(self, driver_output, tail_length):
        with mock.patch.object(self.compute.driver, 'get_console_output',
                               return_value=driver_output):
            return self.compute.get_console_output(
                self.context, instance=self.instance,
                tail_length=tail_length)

    def test_tail_of_text_output(self):
        for n, expected in ((1, 'last line'),
                            (2, 'login: \nlast line'),
                            (3, 'boot line 2\nlogin: \nlast line')):
            output = self._output(LOG_TEXT, n)
            self.assertIsInstance(output, str)
            self.assertEqual(expected, output, 'length %d' % n)

    def test_tail_of_bytes_output(self):
        output = self._output(LOG_BYTES, 2)
        self.assertIsInstance(output, str)
        self.assertEqual('login: \nlast line', output)

    def test_tail_length_as_string(self):
        # the API passes the length on as the request gave it ("2" or 2)
        self.assertEqual('login: \nlast line', self._output(LOG_TEXT, '2'))
        self.assertEqual('login: \nlast line', self._output(LOG_BYTES, '2'))

    def test_tail_longer_than_log(self):
        self.assertEqual(LOG_TEXT, self._output(LOG_TEXT, 50))
        self.assertEqual(LOG_TEXT, self._output(LOG_BYTES, 50))

    def test_tail_zero_lines(self):
        self.assertEqual('', self._output(LOG_TEXT, 0))
        self.assertEqual('', self._output(LOG_BYTES, 0))

    def test_tail_of_bytes_with_non_ascii(self):
        output = self._output(b'first\ncaf\xc3\xa9\nend', 2)
        self.assertIsInstance(output, str)
        self.assertEqual('caf\ufffd\ufffd\nend', output)

    def test_tail_of_text_with_non_ascii(self):
        # a guest writes what it likes to its console
        output = self._output('first\ncaf\u00e9\nend', 2)
        self.assertIsInstance(output, str)
        lines = output.split('\n')
        self.assertEqual(2, len(lines))
        self.assertTrue(lines[0].startswith('caf'))
        self.assertEqual('end', lines[1])

    def test_whole_output_without_length(self):
        self.assertEqual(LOG_TEXT, self._output(LOG_TEXT, None))
        self.assertEqual(LOG_TEXT, self._output(LOG_BYTES, None))
