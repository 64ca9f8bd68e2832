"""The host tier's names and queries: node_exporter's series (pulled) and collectd's (pushed).

Not names of the app's (app/signals.py): each exporter names what it reads of the machine its own
way, and these are those names, written once, for the dashboards' host panels and the tests. The
contract (lab/contract.py's prometheus_series and graphite_series) includes them.

    NodeQueries().memory_used()      # PromQL, job="node"
    CollectdQueries().memory_used()  # a Graphite target, named by host
"""

from dataclasses import dataclass

from .queries import is_

NODE_CPU = "node_cpu_seconds_total"  # by cpu and mode (idle, user, system, iowait, ...)
NODE_MEMORY_TOTAL = "node_memory_MemTotal_bytes"
NODE_MEMORY_AVAILABLE = "node_memory_MemAvailable_bytes"  # the kernel's estimate of what can be had
NODE_DISK_BYTES = {"read": "node_disk_read_bytes_total", "written": "node_disk_written_bytes_total"}
NODE_NETWORK_BYTES = {
    "received": "node_network_receive_bytes_total",
    "sent": "node_network_transmit_bytes_total",
}
NODE_LOAD1 = "node_load1"
NODE_SERIES = (
    NODE_CPU,
    NODE_MEMORY_TOTAL,
    NODE_MEMORY_AVAILABLE,
    *NODE_DISK_BYTES.values(),
    *NODE_NETWORK_BYTES.values(),
    NODE_LOAD1,
)
# collectd's write_graphite (collectd/collectd.conf): Prefix "collectd.", then the host name, then
# plugin[-instance].type[-instance] (a counter stored as a rate per second: StoreRates).
COLLECTD_PREFIX = "collectd"
COLLECTD_CPU = "cpu.percent-{state}"  # percent of the whole machine (ReportByCpu false)
COLLECTD_MEMORY = (
    "memory.memory-{kind}"  # used, free, buffered, cached, slab_recl, slab_unrecl: they add up to the total
)
COLLECTD_DISK = "disk-{disk}.disk_octets.{direction}"  # bytes per second, read or write
COLLECTD_INTERFACE = "interface-{interface}.if_octets.{direction}"  # bytes per second, rx or tx
COLLECTD_LOAD = "load.load.{term}"  # shortterm, midterm, longterm
COLLECTD_TEMPLATES = (COLLECTD_CPU, COLLECTD_MEMORY, COLLECTD_DISK, COLLECTD_INTERFACE, COLLECTD_LOAD)


@dataclass(frozen=True)
class NodeQueries:
    """PromQL over node_exporter's series: the host, pulled. One series per host (`instance`)."""

    scope: tuple[str, ...] = (is_("job", "node"),)
    window: str = "$__rate_interval"

    def select(self, metric: str, *matchers: str) -> str:
        return f"{metric}{{{','.join((*matchers, *self.scope))}}}"

    def cpu_busy(self) -> str:
        """The share of the host's CPU time not idle (0..1), over every core."""
        idle = f"rate({self.select(NODE_CPU, is_('mode', 'idle'))}[{self.window}])"
        return f"1 - avg by (instance) ({idle})"

    def memory_used(self) -> str:
        """Bytes in use: what the kernel could not hand out now (total less MemAvailable)."""
        total, available = self.select(NODE_MEMORY_TOTAL), self.select(NODE_MEMORY_AVAILABLE)
        return f"sum by (instance) ({total}) - sum by (instance) ({available})"

    def memory_total(self) -> str:
        return f"sum by (instance) ({self.select(NODE_MEMORY_TOTAL)})"

    def disk_bytes(self, direction: str) -> str:
        """Bytes per second read or written, over every disk (`read`, `written`)."""
        return f"sum by (instance) (rate({self.select(NODE_DISK_BYTES[direction])}[{self.window}]))"

    def network_bytes(self, direction: str) -> str:
        """Bytes per second received or sent, over every interface but loopback (`received`, `sent`)."""
        selected = self.select(NODE_NETWORK_BYTES[direction], 'device!="lo"')
        return f"sum by (instance) (rate({selected}[{self.window}]))"

    def load1(self) -> str:
        return f"sum by (instance) ({self.select(NODE_LOAD1)})"


@dataclass(frozen=True)
class CollectdQueries:
    """Graphite targets over collectd's series: the same host, pushed. Named by host (node 1)."""

    host: str = "*"

    def series(self, template: str, **nodes: str) -> str:
        return f"{COLLECTD_PREFIX}.{self.host}.{template.format(**nodes)}"

    def cpu_busy(self) -> str:
        """The share of the host's CPU time not idle (0..1): 100 less the idle percent."""
        idle = self.series(COLLECTD_CPU, state="idle")
        return f"aliasByNode(offset(scale({idle}, -0.01), 1), 1)"

    def memory_used(self) -> str:
        """Bytes in use, as collectd counts them: total less free, buffers, page cache and slab."""
        return f"aliasByNode({self.series(COLLECTD_MEMORY, kind='used')}, 1)"

    def memory_total(self) -> str:
        """Every state's bytes added up: the host's memory."""
        return f"groupByNode({self.series(COLLECTD_MEMORY, kind='*')}, 1, 'sumSeries')"

    def disk_bytes(self, direction: str) -> str:
        """Bytes per second read or written, over every disk (`read`, `written`)."""
        name = {"read": "read", "written": "write"}[direction]
        return f"groupByNode({self.series(COLLECTD_DISK, disk='*', direction=name)}, 1, 'sumSeries')"

    def network_bytes(self, direction: str) -> str:
        """Bytes per second received or sent, over every interface but loopback (`received`, `sent`)."""
        name = {"received": "rx", "sent": "tx"}[direction]
        target = self.series(COLLECTD_INTERFACE, interface="*", direction=name)
        return f"groupByNode({target}, 1, 'sumSeries')"

    def load1(self) -> str:
        return f"aliasByNode({self.series(COLLECTD_LOAD, term='shortterm')}, 1)"
