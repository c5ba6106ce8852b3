"""Short-vector additions for the compiled kernels.

Numba leaves LLVM's SLP vectoriser off, so ``acc[i + 0] += v0; ...; acc[i + 7] += v7`` compiles to eight
scalar additions. :func:`add4` and :func:`add8` emit the same additions as one 4- or 8-wide vector load, add
and store, which LLVM lowers to the widest vector unit of the machine (an AVX2 or AVX-512 operation, NEON
pairs on ARM). ``acc`` may be float64 or float32; the values are rounded to its precision first
(``float32(v)``), so every lane is one ordinary IEEE addition in that precision, bit for bit the scalar
``acc[i] += float32(v)`` of :func:`add1`.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_ELEMENT = {types.float64: ir.DoubleType(), types.float32: ir.FloatType()}


def _vector_add(width: int):
    def typer(typingctx, dst, offset, *values):
        if not (isinstance(dst, types.Array) and dst.dtype in _ELEMENT and dst.layout == "C"):
            return None
        if len(values) != width or not all(isinstance(v, types.Float) for v in values):
            return None
        sig = types.void(dst, types.intp, *values)

        def codegen(context, builder, signature, args):
            arr = context.make_array(signature.args[0])(context, builder, args[0])
            dtype = signature.args[0].dtype
            values = [context.cast(builder, v, t, dtype) for v, t in zip(args[2:], signature.args[2:], strict=True)]
            ptr = builder.gep(arr.data, [args[1]])
            if width == 1:
                builder.store(builder.fadd(builder.load(ptr), values[0]), ptr)
                return context.get_dummy_value()
            vec_type = ir.VectorType(_ELEMENT[dtype], width)
            vec = ir.Constant(vec_type, None)
            for i, value in enumerate(values):
                vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), i))
            ptr = builder.bitcast(ptr, vec_type.as_pointer())
            builder.store(builder.fadd(builder.load(ptr, align=4), vec), ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add1(typingctx, dst, offset, v0):
    """``dst[offset] += v0`` in the precision of ``dst`` (float64 or float32, C-contiguous; no bounds check)."""
    return _vector_add(1)(typingctx, dst, offset, v0)


@intrinsic
def add4(typingctx, dst, offset, v0, v1, v2, v3):
    """``dst[offset + i] += v_i`` for ``i < 4`` in the precision of ``dst`` (see :func:`add1`)."""
    return _vector_add(4)(typingctx, dst, offset, v0, v1, v2, v3)


@intrinsic
def add8(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7):
    """``dst[offset + i] += v_i`` for ``i < 8`` in the precision of ``dst`` (see :func:`add1`)."""
    return _vector_add(8)(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7)
