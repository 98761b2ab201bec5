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
        "sdnotify>=0.3",
    ],
    entry_points={
        "console_scripts": ["kiskadee = kiskadee.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Quality Assurance",
    ],
)
