"""Short-vector additions for the compiled kernels.

Numba leaves LLVM's SLP vectoriser off, so ``acc[i + 0] += v0; ...; acc[i + 7] += v7`` compiles to eight
scalar additions. :func:`add4` and :func:`add8` emit the same additions as one ``<4 x double>`` /
``<8 x double>`` load, add and store, which LLVM lowers to the widest vector unit of the machine (two
AVX2 or one AVX-512 operation for eight lanes, NEON pairs on ARM). Each lane is an ordinary IEEE
double addition, so the results are bit-for-bit those of the scalar code.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


def _vector_add(width: int):
    def typer(typingctx, dst, offset, *values):
        if not (isinstance(dst, types.Array) and dst.dtype == types.float64 and dst.layout == "C"):
            return None
        if len(values) != width:
            return None
        sig = types.void(dst, types.intp, *([types.float64] * width))

        def codegen(context, builder, signature, args):
            arr = context.make_array(signature.args[0])(context, builder, args[0])
            vec_type = ir.VectorType(ir.DoubleType(), width)
            vec = ir.Constant(vec_type, None)
            for i, value in enumerate(args[2:]):
                vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), i))
            ptr = builder.bitcast(builder.gep(arr.data, [args[1]]), vec_type.as_pointer())
            builder.store(builder.fadd(builder.load(ptr, align=8), vec), ptr, align=8)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add4(typingctx, dst, offset, v0, v1, v2, v3):
    """``dst[offset + i] += v_i`` for ``i < 4`` (float64, C-contiguous ``dst``; no bounds check)."""
    return _vector_add(4)(typingctx, dst, offset, v0, v1, v2, v3)


@intrinsic
def add8(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7):
    """``dst[offset + i] += v_i`` for ``i < 8`` (float64, C-contiguous ``dst``; no bounds check)."""
    return _vector_add(8)(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7)
