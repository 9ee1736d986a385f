"""find_package(tronada) as an app meets it, here against this build tree (the Debian
packages install the same config; scripts/check-package builds against those): the core
alone looks for no Python, `COMPONENTS gateway` adds tronada::tronada_gateway and builds a
program that serves a Flask app, `COMPONENTS db` adds tronada::tronada_db, and a
component whose targets file is absent (its package not installed) is reported by
package name, failing only when required."""
import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from conftest import BUILD, ROOT, free_port, wait_for_port

BUILD_TIMEOUT = 600


def write_project(path, find_args, body=""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.25)
project(probe LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(tronada REQUIRED {find_args})
foreach(target tronada::tronada tronada::tronada_gateway tronada::tronada_db)
  if(TARGET ${{target}})
    message(STATUS "probe: has ${{target}}")
  endif()
endforeach()
message(STATUS "probe: gateway_FOUND=${{tronada_gateway_FOUND}}")
{body}
""")
    return path


def configure(project, package_dir=BUILD):
    return subprocess.run(
        ["cmake", "-S", str(project), "-B", str(project / "build"), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Debug", f"-Dtronada_DIR={package_dir}"],
        capture_output=True, text=True, timeout=120)


def targets(output):
    return set(re.findall(r"probe: has (\S+)", output))


def test_the_core_alone_looks_for_no_python(tmp_path):
    r = configure(write_project(tmp_path / "app", ""))
    assert r.returncode == 0, r.stdout + r.stderr
    assert targets(r.stdout) == {"tronada::tronada"}
    assert "Python" not in r.stdout
    assert "Python3" not in (tmp_path / "app" / "build" / "CMakeCache.txt").read_text()


@pytest.mark.parametrize("component,target", [("gateway", "tronada::tronada_gateway"),
                                              ("db", "tronada::tronada_db")])
def test_a_component_adds_its_target(tmp_path, component, target):
    r = configure(write_project(tmp_path / "app", f"COMPONENTS {component}"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert targets(r.stdout) == {"tronada::tronada", target}


def test_an_unknown_component_fails(tmp_path):
    r = configure(write_project(tmp_path / "app", "COMPONENTS gatewya"))
    assert r.returncode != 0
    assert "no component 'gatewya'" in r.stderr


@pytest.fixture
def core_only_package(tmp_path):
    """The config as tronada-dev alone installs it: no gateway or db targets files."""
    package = tmp_path / "core-only"
    package.mkdir()
    for name in ["tronadaConfig.cmake", "tronadaConfigVersion.cmake", "tronadaTargets.cmake"]:
        shutil.copy(BUILD / name, package / name)
    return package


def test_a_required_component_not_installed_names_its_package(tmp_path, core_only_package):
    r = configure(write_project(tmp_path / "app", "COMPONENTS gateway"), core_only_package)
    assert r.returncode != 0
    assert "component gateway is not installed" in r.stderr
    assert "tronada-gateway-dev" in r.stderr


def test_an_optional_component_not_installed_leaves_the_core(tmp_path, core_only_package):
    r = configure(write_project(tmp_path / "app", "OPTIONAL_COMPONENTS gateway"),
                  core_only_package)
    assert r.returncode == 0, r.stdout + r.stderr
    assert targets(r.stdout) == {"tronada::tronada"}
    assert "probe: gateway_FOUND=FALSE" in r.stdout
    assert "Python3" not in (tmp_path / "app" / "build" / "CMakeCache.txt").read_text()


def test_the_gateway_component_builds_a_program_that_serves_flask(tmp_path):
    pytest.importorskip("flask")
    examples = ROOT / "examples"
    project = write_project(tmp_path / "mixed", "COMPONENTS gateway", f"""
add_executable(wsgi_mixed {examples}/wsgi_mixed.cpp)
target_include_directories(wsgi_mixed PRIVATE {examples})
target_link_libraries(wsgi_mixed PRIVATE tronada::tronada_gateway)
""")
    r = configure(project)
    assert r.returncode == 0, r.stdout + r.stderr
    build = subprocess.run(["cmake", "--build", str(project / "build")], capture_output=True,
                           text=True, timeout=BUILD_TIMEOUT)
    assert build.returncode == 0, build.stdout + build.stderr
    # Only the program's own file was compiled: the libraries came from this build tree.
    assert len(re.findall(r"Building CXX object", build.stdout)) == 1, build.stdout

    port = free_port()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    server = subprocess.Popen([str(project / "build" / "wsgi_mixed"), "--port", str(port),
                               str(examples / "wsgi_mixed_app.py")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        # It imports Flask before it listens.
        wait_for_port(port, server, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/", timeout=30) as resp:
            assert resp.status == 200
            assert resp.read().decode().startswith("hello from Flask")
    finally:
        server.terminate()
        server.wait(timeout=30)
