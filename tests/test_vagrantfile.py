"""vagrant/Vagrantfile is valid: `vagrant validate` where Vagrant is installed, else Ruby.

Without Vagrant, Ruby parses the file (`ruby -c`) and then loads it against a stand-in
``Vagrant.configure`` that records the VMs and their inline shell provisioners, which must be
valid bash (`bash -n`) and install the files this repository ships.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VAGRANTFILE = REPO / "vagrant/Vagrantfile"

# Every method call on the config (and on what it returns) is recorded; blocks are run with a
# recorder too, so `config.vm.define "lb1" do |lb| ... end` yields the VM's provisioners.
RECORDER = r"""
require "json"
class Recorder
  def initialize(log, vm) = (@log, @vm = log, vm)
  def method_missing(name, *args, **kw, &block)
    vm = name == :define ? args.first : @vm
    @log << { "vm" => @vm, "call" => name.to_s, "args" => args.map(&:to_s),
              "inline" => kw[:inline] }
    block&.call(Recorder.new(@log, vm))
    Recorder.new(@log, vm)
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.configure(version)
    log = []
    yield Recorder.new(log, nil)
    puts JSON.generate(log)
  end
end
load ARGV[0]
"""


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
def test_vagrant_validate() -> None:
    done = run(["vagrant", "validate"], cwd=VAGRANTFILE.parent)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def calls() -> list[dict]:
    if shutil.which("ruby") is None:
        pytest.skip("neither vagrant nor ruby is installed (apt-get install ruby)")
    syntax = run(["ruby", "-c", str(VAGRANTFILE)])
    assert syntax.returncode == 0, syntax.stderr
    done = run(["ruby", "-e", RECORDER, str(VAGRANTFILE)])
    assert done.returncode == 0, done.stderr
    recorded: list[dict] = json.loads(done.stdout)
    return recorded


def test_the_five_vms_on_one_network(calls: list[dict]) -> None:
    vms = [c["args"][0] for c in calls if c["call"] == "define"]
    assert vms == ["lb1", "lb2", "pacs1", "pacs2", "client"]
    nets = {c["vm"]: c["args"] for c in calls if c["call"] == "network"}
    assert set(nets) == set(vms)
    assert all(args == ["private_network"] for args in nets.values())
    box = [c["args"] for c in calls if c["call"] == "box="]
    assert box == [["debian/bookworm64"]]


def test_provisioners_are_valid_bash_and_install_shipped_files(calls: list[dict]) -> None:
    scripts: dict[str, str] = {}
    for c in calls:
        if c["call"] == "provision":
            scripts[c["vm"]] = scripts.get(c["vm"], "") + c["inline"]
    assert set(scripts) == {"lb1", "lb2", "pacs1", "pacs2", "client"}
    for vm, script in scripts.items():
        done = run(["bash", "-n"], input=script)
        assert done.returncode == 0, f"{vm}: {done.stderr}"
        for path in (p.split()[0] for p in script.split("/vagrant/")[1:]):
            assert (REPO / path).exists(), f"{vm} installs /vagrant/{path}, which is missing"
    for lb in ("lb1", "lb2"):
        assert f"/vagrant/etc/vrrpd/{lb}.yaml" in scripts[lb]
        assert f"-L {lb}" in scripts[lb]  # HAProxy's local peer name
