"""The PACS reference deployment (etc/haproxy, etc/vrrpd/lb1.yaml, lb2.yaml) is valid and coherent.

The files are meant for other hosts, so they are checked with ``vrrpd --check-config
--no-host-checks`` (the file alone); what is checked is what breaks a real pair: HAProxy
refusing its file, a node's vrrpd refusing its config, the two nodes disagreeing on the virtual
router, the sync peers not pointing at each other, and the trackers checking ports HAProxy does
not listen on.

The shipped files pin the all-zeros placeholder fingerprint, which vrrpd refuses (shown below);
everything else is checked on copies pinned as an operator does: a key pair per node from
``vrrpd config-sync keygen``, each node's fingerprint pasted into the other's file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from vrrpd.config.loader import load_config
from vrrpd.config.model import Config, HAProxyOptions, HttpOptions, TcpOptions

REPO = Path(__file__).resolve().parents[1]
HAPROXY_CFG = REPO / "etc/haproxy/haproxy.cfg"
NODES = ("lb1", "lb2")
PLACEHOLDER = "sha256:" + "0" * 64
CHECK = [sys.executable, "-m", "vrrpd", "--check-config"]


def vrrpd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vrrpd", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of lb1.yaml / lb2.yaml with real keys pinned, and each node's key file."""
    tmp = tmp_path_factory.mktemp("pins")
    prints = {}
    for node in NODES:
        made = vrrpd("config-sync", "keygen", "--cert", str(tmp / f"{node}.pem"), "--name", node)
        assert made.returncode == 0, made.stderr
        prints[node] = made.stdout.strip()
    files = {}
    for node, other in (NODES, NODES[::-1]):
        text = (REPO / f"etc/vrrpd/{node}.yaml").read_text()
        assert text.count(PLACEHOLDER) == 1
        files[node] = tmp / f"{node}.yaml"
        files[node].write_text(text.replace(PLACEHOLDER, prints[other]))
    return files


@pytest.fixture(scope="module")
def configs(pinned: dict[str, Path]) -> dict[str, Config]:
    return {n: load_config(pinned[n], host=False) for n in NODES}


@pytest.mark.parametrize("node", NODES)
def test_shipped_file_is_refused_only_for_its_placeholder_pin(node: str) -> None:
    path = REPO / f"etc/vrrpd/{node}.yaml"
    line = path.read_text()[:path.read_text().index(PLACEHOLDER)].count("\n") + 1
    done = vrrpd("--check-config", "--no-host-checks", "-c", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"vrrpd: configuration refused: {path}:{line}: config_sync.peer_fingerprints[0]: the "
        "all-zeros placeholder pins no certificate: run `vrrpd config-sync keygen"), done.stderr


@pytest.mark.parametrize("node", NODES)
def test_pinned_file_passes_the_check_for_another_host(pinned: dict[str, Path],
                                                       node: str) -> None:
    done = vrrpd("--check-config", "--no-host-checks", "-c", str(pinned[node]))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{pinned[node]}: OK (1 instance(s)) (host checks skipped)\n"


def test_pinned_file_on_its_node_needs_the_key_file(pinned: dict[str, Path]) -> None:
    """With host checks, lb1's file wants its own key at `config_sync.cert`; with the key there the
    only remarks are warnings (this machine has no eth1: pacs would wait in FAULT)."""
    text = pinned["lb1"].read_text()
    refused = vrrpd("--check-config", "-c", str(pinned["lb1"]))
    line = text[:text.index("cert: /etc/vrrpd/sync/node.pem")].count("\n") + 1
    assert refused.returncode == 1
    assert f"{pinned['lb1']}:{line}: config_sync.cert: /etc/vrrpd/sync/node.pem does not exist; " \
           "create it with `vrrpd config-sync keygen" in refused.stderr
    here = pinned["lb1"].with_name("lb1-here.yaml")
    here.write_text(text.replace("/etc/vrrpd/sync/node.pem", str(pinned["lb1"].with_suffix(
        ".pem"))).replace("interface: eth1", "interface: vrnosuch0"))
    ok = vrrpd("--check-config", "-c", str(here))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        f"{here}: warning: instances[0].interface: interface vrnosuch0 does not exist: "
        "instance pacs would wait in FAULT until it is usable",
        f"{here}: OK (1 instance(s))"]


def haproxy_lines(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` line in haproxy.cfg (comments stripped)."""
    lines = (line.split("#", 1)[0].split() for line in HAPROXY_CFG.read_text().splitlines())
    return [" ".join(words[1:]) for words in lines if words and words[0] == keyword]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("node", NODES)
def test_haproxy_accepts_the_file_with_no_warning(node: str) -> None:
    # -L names the local peer (the file holds none: it is synced between the nodes);
    # -dW makes any warning fatal.  -c parses and checks without binding anything.
    done = subprocess.run(["haproxy", "-dW", "-c", "-f", str(HAPROXY_CFG), "-L", node],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_haproxy_peers_are_the_two_nodes(configs: dict[str, Config]) -> None:
    peers = {line.split()[0]: line.split()[1].rsplit(":", 1)[0] for line in haproxy_lines("peer")}
    assert peers == {n: configs[n].config_sync.listen[0] for n in NODES}  # type: ignore[union-attr]


def test_both_nodes_run_the_same_virtual_router(configs: dict[str, Config]) -> None:
    lb1, lb2 = (configs[n].instances for n in NODES)
    assert [(i.name, i.vrid, i.version, i.vips, i.interface) for i in lb1] == \
           [(i.name, i.vrid, i.version, i.vips, i.interface) for i in lb2]
    for a, b in zip(lb1, lb2, strict=True):
        assert a.priority > b.priority, "lb1 is the preferred master"
        # Everything but the priority must match, or a failover changes behaviour.
        assert a.advert_interval_cs == b.advert_interval_cs
        assert (a.preempt, a.preempt_delay, a.track) == (b.preempt, b.preempt_delay, b.track)
    assert configs["lb1"].tracks == configs["lb2"].tracks
    assert [c.node for c in configs.values()] == list(NODES)


def test_sync_peers_point_at_each_other(configs: dict[str, Config]) -> None:
    s1, s2 = (configs[n].config_sync for n in NODES)
    assert s1 is not None and s2 is not None
    assert s1.peers == (s2.listen,) and s2.peers == (s1.listen,)
    assert s1.listen != s2.listen
    same = ("cert", "files", "validate", "reload", "instance", "source")
    assert {k: getattr(s1, k) for k in same} == {k: getattr(s2, k) for k in same}
    assert s1.files == (Path("/etc/haproxy/haproxy.cfg"),)


def test_haproxy_binds_every_vip_and_every_tracked_port(configs: dict[str, Config]) -> None:
    binds = {b.split()[0] for b in haproxy_lines("bind")}
    vips = {str(v.ip) for i in configs["lb1"].instances for v in i.vips}
    assert vips == {b.rsplit(":", 1)[0] for b in binds} - {"127.0.0.1"}
    for track in configs["lb1"].tracks.values():
        if isinstance(track.options, TcpOptions):
            assert f"{track.options.host}:{track.options.port}" in binds, track.name
        elif isinstance(track.options, HttpOptions):
            url = urlsplit(track.options.url)
            assert f"{url.hostname}:{url.port or 80}" in binds, track.name
            assert url.path in haproxy_lines("monitor-uri")
        elif isinstance(track.options, HAProxyOptions):
            assert str(track.options.pidfile) in haproxy_lines("pidfile")
            assert any(s.split()[:2] == ["socket", str(track.options.socket)]
                       for s in haproxy_lines("stats"))


def test_sysctl_allows_binding_the_vip_on_the_backup() -> None:
    text = (REPO / "etc/sysctl.d/60-vrrpd.conf").read_text()
    settings = dict(re.findall(r"^\s*([\w.]+)\s*=\s*(\S+)", text, re.M))
    assert settings == {"net.ipv4.ip_nonlocal_bind": "1", "net.ipv6.ip_nonlocal_bind": "1"}


# ---- the transparent variant (README "Transparent mode") ---------------------------------

TPROXY_ENV = {"PACS_TRANSPARENT": "1", "PACS1": "198.51.100.30", "PACS2": "198.51.100.31"}


def tproxy_config(node: str, tmp: Path) -> Config:
    """``etc/vrrpd/<node>-tproxy.yaml``, its placeholder pin replaced by a well-formed one."""
    path = tmp / f"{node}-tproxy.yaml"
    text = (REPO / f"etc/vrrpd/{node}-tproxy.yaml").read_text()
    assert text.count(PLACEHOLDER) == 1
    path.write_text(text.replace(PLACEHOLDER, "sha256:" + "ab" * 32))
    return load_config(path, host=False)


@pytest.mark.parametrize("node", NODES)
def test_tproxy_variant_shares_everything_but_the_second_network(configs: dict[str, Config],
                                                                 node: str,
                                                                 tmp_path: Path) -> None:
    """lbN-tproxy.yaml is lbN.yaml plus the gateway instance and the sync group: the same
    trackers, sync, metrics and client-side instance (no drift between the two files)."""
    plain, tp = configs[node], tproxy_config(node, tmp_path)
    assert (tp.node, tp.tracks, tp.metrics) == (plain.node, plain.tracks, plain.metrics)
    assert tp.config_sync is not None and plain.config_sync is not None
    assert (tp.config_sync.listen, tp.config_sync.peers) == \
           (plain.config_sync.listen, plain.config_sync.peers)
    pacs, gateway = tp.instances
    assert pacs == plain.instances[0]
    assert [g.instances for g in tp.sync_groups] == [("pacs", "gateway")]
    assert gateway.tproxy is not None and pacs.tproxy is None
    assert (gateway.interface, gateway.vrid, [str(v) for v in gateway.vips]) == \
           ("eth2", 52, ["198.51.100.1/24"])
    for key in ("priority", "preempt", "preempt_delay", "advert_interval_cs", "track"):
        assert getattr(gateway, key) == getattr(pacs, key), key  # neither outbids the other


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_transparent_variant_is_the_same_file(tmp_path: Path) -> None:
    """With PACS_TRANSPARENT (and the PACS addresses) in its environment, the reference file
    connects from the client's address on every backend; without, it does not."""
    def dump(env: dict[str, str]) -> str:
        done = subprocess.run(["haproxy", "-dW", "-c", "-f", str(HAPROXY_CFG), "-L", "lb1"],
                              capture_output=True, text=True, timeout=30,
                              env={"PATH": os.environ["PATH"], **env})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    dump(TPROXY_ENV)
    dump({})
    blocks = [b.split(".endif")[0].split(".else")
              for b in HAPROXY_CFG.read_text().split(".if defined(PACS_TRANSPARENT)")[1:]]
    lines = [[[w for w in (ln.split("#")[0].strip() for ln in part.splitlines()) if w]
              for part in b] for b in blocks]
    # global: root instead of `user haproxy` (HAProxy 2.6 refuses to change uid with usesrc);
    # both defaults sections (web, then the four DICOM listens): from the client's address
    assert lines == [[[], ["user haproxy", "group haproxy"]],
                     [["source 0.0.0.0 usesrc clientip"]],
                     [["source 0.0.0.0 usesrc clientip"]]]
    assert haproxy_lines("presetenv") == ["PACS1 192.0.2.30", "PACS2 192.0.2.31"]
