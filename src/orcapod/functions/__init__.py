"""Layer 8: packet functions, the result cache and function pods.

Submodules with more public names: ``orcapod.functions.result_cache`` (``FILTERED``,
``match_constraints``), ``orcapod.functions.provenance`` (record ids, source info) and
``orcapod.functions.pending`` (``Pending``).
"""

from orcapod.functions.cached import CachedFunctionPod, CachedPacketFunction
from orcapod.functions.decorator import function_pod
from orcapod.functions.function_pod import FunctionPod
from orcapod.functions.function_pod_stream import FunctionPodStream
from orcapod.functions.packet_function import PacketFunctionBase, PacketFunctionWrapper
from orcapod.functions.python_function import PythonPacketFunction
from orcapod.functions.result_cache import ResultCache

__all__ = [
    "CachedFunctionPod",
    "CachedPacketFunction",
    "FunctionPod",
    "FunctionPodStream",
    "PacketFunctionBase",
    "PacketFunctionWrapper",
    "PythonPacketFunction",
    "ResultCache",
    "function_pod",
]
