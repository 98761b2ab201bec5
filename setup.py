from setuptools import find_packages, setup

from kiskadee import __version__

setup(
    name="kiskadee",
    version=__version__,
    description="Continuous static analysis of upstream releases and distribution archives",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.9",
    packages=find_packages(include=["kiskadee", "kiskadee.*"]),
    install_requires=[
        "peewee>=3.14",
        "tomli>=1.1; python_version < '3.11'",
        "python-debian>=0.1.39",
        "packaging>=20",
        "pyzmq>=22",
        # The docker sandbox backend, which the shipped configuration selects (imported only by it).
        "docker>=6",
        # 'kiskadee export --format firehose' builds its XML with firehose's model;
        # firehose imports six without declaring it.
        "firehose>=0.5",
        "six>=1.10",
        # Which function a finding is in, for analyzers that do not say (kiskadee.analysis.functions).
        "tree-sitter>=0.22",
        "tree-sitter-c>=0.21",
        "tree-sitter-cpp>=0.22",
    ],
    extras_require={
        # The Anitya bridge inside fedmsg-hub (moksha.hub needs pkg_resources: setuptools < 82).
        "fedmsg": ["fedmsg[consumers,commands]>=1.1.7", "anitya-schema>=2", "fastjsonschema>=2.15",
                   "setuptools<82"],
        # The Anitya consumer for 'fedora-messaging consume'.
        "amqp": ["fedora-messaging>=3", "anitya-schema>=2", "fastjsonschema>=2.15"],
        # A PostgreSQL server as the database (database.url = "postgresql://...").
        "postgresql": ["psycopg2>=2.8"],
    },
    entry_points={
        "console_scripts": ["kiskadee = kiskadee.cli:main"],
        "moksha.consumer": ["kiskadee_anitya = kiskadee.anitya.bridge:AnityaConsumer"],
        # kiskadee's own messages ('kiskadee publish'): consumers find the classes by these names.
        "fedora.messages": [
            "kiskadee.analysis.complete.v1 = kiskadee.anitya.schema:AnalysisCompleteV1",
            "kiskadee.analysis.failed.v1 = kiskadee.anitya.schema:AnalysisFailedV1",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Quality Assurance",
    ],
)
