"""The deployment files under deploy/ (deploy/README.md says what CI exercises of them): every conf file the compose
file mounts exists and passes the roles' own checks (`mqbroker -p`, `mqnamesrv -p`), each broker's address and
NameServer address agree with the compose network, and the systemd unit templates pass `systemd-analyze verify`
(skipped where systemd-analyze is missing). The containers and units are never started here."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from test_cpp_client import BUILD

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DOCKER = os.path.join(ROOT, "deploy", "docker")
SYSTEMD = os.path.join(ROOT, "deploy", "systemd")


def compose_services(path):
    """Each service of our compose file: its command, mounted files and address (a line reader for this file's
    shape, not a YAML parser)."""
    services, current, section = {}, None, None
    for line in open(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == 0:
            section = text.rstrip(":")
            current = None
        elif section == "services" and indent == 2:
            current = services.setdefault(text.rstrip(":"), {"mounts": [], "address": None, "command": []})
        elif current is not None:
            mount = re.match(r"- (\./[^:]+):(/[^:]+)", text)
            if mount:
                current["mounts"].append((mount.group(1), mount.group(2)))
            address = re.match(r"ipv4_address: (\S+)", text)
            if address:
                current["address"] = address.group(1)
            command = re.match(r"command: \[(.*)\]", text)
            if command:
                current["command"] = [part.strip().strip('"') for part in command.group(1).split(",")]
    return services


def properties(path):
    values = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def test_compose_mounts_valid_conf_files_whose_addresses_match_the_network():
    services = compose_services(os.path.join(DOCKER, "docker-compose.yml"))
    assert set(services) == {"namesrv", "broker-a", "broker-a-s", "broker-b", "broker-b-s"}
    namesrv = services["namesrv"]["address"]
    assert namesrv
    roles = {}
    for name, service in services.items():
        role = service["command"][0]
        assert role in ("mqnamesrv", "mqbroker"), service["command"]
        conf_in_container = service["command"][service["command"].index("-c") + 1]
        host_files = [host for host, container in service["mounts"] if container == conf_in_container]
        assert len(host_files) == 1, "%s mounts its -c file once: %s" % (name, service["mounts"])
        path = os.path.join(DOCKER, host_files[0])
        assert os.path.isfile(path), path
        run = subprocess.run([os.path.join(BUILD, role), "-p", "-c", path], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, "%s -p -c %s: %s%s" % (role, path, run.stdout, run.stderr)
        roles[name] = properties(path)
        if role == "mqbroker":
            values = roles[name]
            assert values["brokerIP1"] == service["address"], name
            assert values["namesrvAddr"] == "%s:%s" % (namesrv, roles.get("namesrv", {}).get("listenPort", "9876")), name
    for group in ("broker-a", "broker-b"):
        master, slave = roles[group], roles[group + "-s"]
        assert master["brokerName"] == slave["brokerName"] == group
        assert (master["brokerId"], master["brokerRole"]) == ("0", "SYNC_MASTER")
        assert slave["brokerId"] != "0" and slave["brokerRole"] == "SLAVE"
    assert len({service["address"] for service in services.values()}) == len(services), "one address per container"


def test_a_bad_value_in_a_mounted_file_is_refused_by_the_check_the_test_relies_on(tmp_path):
    bad = tmp_path / "broker.properties"
    text = open(os.path.join(DOCKER, "2m-2s-sync", "broker-a.properties")).read().replace("brokerRole=SYNC_MASTER", "brokerRole=BOSS")
    bad.write_text(text)
    run = subprocess.run([os.path.join(BUILD, "mqbroker"), "-p", "-c", str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "brokerRole" in run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_templates_verify():
    with tempfile.TemporaryDirectory() as directory:
        instances = []
        for template, instance in (("mqnamesrv@.service", "mqnamesrv@1.service"), ("mqbroker@.service", "mqbroker@broker-a.service")):
            text = open(os.path.join(SYSTEMD, template)).read()
            assert "ExecStart=/usr/local/bin/" in text
            with open(os.path.join(directory, template), "w") as unit:
                unit.write(text.replace("/usr/local/bin", os.path.abspath(BUILD)))
            os.symlink(template, os.path.join(directory, instance))
            instances.append(os.path.join(directory, instance))
        run = subprocess.run(["systemd-analyze", "verify"] + instances, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and not run.stderr.strip(), run.stdout + run.stderr
