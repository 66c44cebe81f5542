"""Installation of pandaharvester (``pip install .``)."""

import glob
import re

from setuptools import find_packages, setup


def _release_version() -> str:
    """Read the version without importing the package (isolated builds)."""
    text = open("pandaharvester/panda_pkg_info.py").read()
    return re.search(r'release_version = "([^"]+)"', text).group(1)


setup(
    name="pandaharvester",
    version=_release_version(),
    description="PanDA Harvester: resource-facing edge service of the PanDA workload system",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["pandaharvester", "pandaharvester.*"]),
    package_data={"pandaharvester": ["harvestertest/data/*", "harvestersubmitter/templates/*"]},
    install_requires=[
        "requests>=2.25",
        "pycurl>=7.43",
        "six",
        "psutil>=5.4.8",
        "future",
        "rpyc",
        "python-daemon>=2.3",
    ],
    extras_require={
        # [db] useMySQLdb = True takes mysqlclient (needs libmariadb-dev, pkg-config: scripts/setup_mariadb.sh)
        "mysql": ["PyMySQL>=1.0"],
        "jinja": ["Jinja2>=3.0"],
        "emulator": ["cryptography"],  # the PanDA emulator's HTTPS mode (its own CA)
        "redis": ["redis>=4.0"],
        "uwsgi": ["uWSGI>=2.0"],  # the original's way of running several processes (templates/panda)
        "test": ["pytest>=7", "pytest-timeout", "hypothesis>=6", "PyMySQL>=1.0", "Jinja2>=3.0", "cryptography",
                 "redis>=4.0", "uWSGI>=2.0"],
        "bench": ["matplotlib>=3.5", "py-spy>=0.3"],
    },
    data_files=[
        ("etc/panda", ["etc/panda_harvester.cfg.rpmnew", "examples/slurm_submit.sh"]
         + glob.glob("examples/panda_queueconfig_*.json")),
        ("etc/systemd/system", glob.glob("templates/systemd/*")),
        ("etc/logrotate.d", glob.glob("templates/logrotate.d/*")),
        ("etc/sysconfig", glob.glob("templates/sysconfig/*")),
        ("etc/panda", glob.glob("templates/panda/*")),
    ],
    entry_points={
        "console_scripts": [
            "panda_harvester=pandaharvester.harvesterbody.master:main",
            "harvester-admin=pandaharvester.harvesterscripts.harvester_admin:main",
            "pandaharvester-emulator=pandaharvester.harvestertest.panda_emulator.cli:main",
        ]
    },
)
