"""The configuration: one frozen, typed object, loaded from YAML and validated up front.

`schema` holds every setting with its default, bounds and documentation (the one source of
each); `load` reads and checks a file, reporting every problem at once with file and key;
`sample` writes the documented sample configuration from the schema.
"""

from faced.config.load import config_from_mapping, load_config
from faced.config.schema import (
    DEFAULT_SOURCE,
    ClusteringConfig,
    Config,
    DaemonConfig,
    DaskConfig,
    DetectionConfig,
    ImagesConfig,
    LibraryConfig,
    PathMap,
    PublishConfig,
    VideoConfig,
    WatchFolder,
    absolute,
)

__all__ = [
    "DEFAULT_SOURCE",
    "ClusteringConfig",
    "Config",
    "DaemonConfig",
    "DaskConfig",
    "DetectionConfig",
    "ImagesConfig",
    "LibraryConfig",
    "PathMap",
    "PublishConfig",
    "VideoConfig",
    "WatchFolder",
    "absolute",
    "config_from_mapping",
    "load_config",
]
