"""The optional C extension (the native scan engine); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pipeline_recovery._native_scan",
            sources=["operator/pipeline_recovery/_native_scan.c"],
            libraries=["hs"],
            # The image ships libhs.so.5 beside the extension (see Dockerfile).
            runtime_library_dirs=["$ORIGIN"],
            # Built where a compiler and libhs headers exist (Debian: libvectorscan-dev or
            # libhyperscan-dev); elsewhere the install goes on without it and the classifier
            # uses the `hyperscan` binding.
            optional=True,
        )
    ]
)
