"""The mini-cloud's ML2 mechanism driver: it binds every port on a flat or local network
to the host that asks, without an agent, the way an OVS agent on that host would have
it bound (vif_type ovs, port filtering by security groups) and marks the port ACTIVE.

A DevStack host runs an agent (OVN or OVS) that wires a port on the host and then
reports it up; the mini-cloud's compute is nova's fake driver, which plugs nothing, so
there is nothing to wire and nobody to report. Modelled on the test drivers in neutron's
tree (neutron/tests/unit/plugins/ml2/drivers/mechanism_test.py), kept to what nova needs:
a bound port (binding:vif_type is not `binding_failed`), so that a server boots ACTIVE
with its address, and the port's status ACTIVE, so that neutron tells nova
`network-vif-plugged` as an agent's report would make it do.

This file runs inside neutron (the lab's python), copied to <lab>/cloud/plugins/ with an
entry point `debuglab` in the `neutron.ml2.mechanism_drivers` group; it imports nothing
from debuglab.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api

BINDABLE = ("flat", "local")


class AgentlessMechanismDriver(api.MechanismDriver):
    """Bind to the first flat or local segment; leave other segments to other drivers."""

    def initialize(self):
        pass

    def bind_port(self, context):
        vnic = context.current.get(portbindings.VNIC_TYPE, portbindings.VNIC_NORMAL)
        if vnic != portbindings.VNIC_NORMAL:
            return  # SR-IOV and the like need hardware the fake host does not have
        for segment in context.segments_to_bind:
            if segment[api.NETWORK_TYPE] in BINDABLE:
                context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                    {portbindings.CAP_PORT_FILTER: True,
                                     portbindings.OVS_HYBRID_PLUG: False},
                                    status=constants.PORT_STATUS_ACTIVE)
                return
