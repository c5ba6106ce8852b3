"""Short-vector additions and a prefetch for the compiled kernels.

Numba leaves LLVM's SLP vectoriser off, so ``acc[i + 0] += v0; ...; acc[i + 7] += v7`` compiles to eight
scalar additions. :func:`add4` and :func:`add8` emit the same additions as one 4- or 8-wide vector load, add
and store, which LLVM lowers to the widest vector unit of the machine (an AVX2 or AVX-512 operation, NEON
pairs on ARM). ``acc`` may be float64 or float32; the values are rounded to its precision first
(``float32(v)``), so every lane is one ordinary IEEE addition in that precision, bit for bit the scalar
``acc[i] += float32(v)``. :func:`add_from4` and :func:`add_from8` add a short vector read from another array of
the same precision (no rounding); :func:`scale_into4` and :func:`scale_into8` write one, the float64 products of a
vector and a number rounded to that precision. :func:`prefetch` asks for the cache line of an array element ahead
of its use.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_ELEMENT = {types.float64: ir.DoubleType(), types.float32: ir.FloatType()}


def _pointer_at(context, builder, array_type, array, offset, pointee):
    """An LLVM pointer to ``array[offset]``, read as a ``pointee`` (a vector of lanes, or a byte)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), pointee.as_pointer())


def _vector_of(builder, vec_type, values):
    """An LLVM vector of ``vec_type`` with ``values`` in its lanes."""
    vec = ir.Constant(vec_type, None)
    for i, value in enumerate(values):
        vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), i))
    return vec


def _vector_add(width: int):
    def typer(typingctx, dst, offset, *values):
        if not (isinstance(dst, types.Array) and dst.dtype in _ELEMENT and dst.layout == "C"):
            return None
        if len(values) != width or not all(isinstance(v, types.Float) for v in values):
            return None
        sig = types.void(dst, types.intp, *values)

        def codegen(context, builder, signature, args):
            dtype = signature.args[0].dtype
            values = [context.cast(builder, v, t, dtype) for v, t in zip(args[2:], signature.args[2:], strict=True)]
            vec_type = ir.VectorType(_ELEMENT[dtype], width)
            ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], vec_type)
            builder.store(builder.fadd(builder.load(ptr, align=4), _vector_of(builder, vec_type, values)), ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add4(typingctx, dst, offset, v0, v1, v2, v3):
    """``dst[offset + i] += v_i`` for ``i < 4``, in the precision of ``dst``.

    ``dst`` float64 or float32, C-contiguous; no bounds check.
    """
    return _vector_add(4)(typingctx, dst, offset, v0, v1, v2, v3)


@intrinsic
def add8(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7):
    """``dst[offset + i] += v_i`` for ``i < 8`` in the precision of ``dst`` (see :func:`add4`)."""
    return _vector_add(8)(typingctx, dst, offset, v0, v1, v2, v3, v4, v5, v6, v7)


def _vector_add_from(width: int):
    def typer(typingctx, dst, offset, src, src_offset):
        ok = all(isinstance(a, types.Array) and a.dtype in _ELEMENT and a.layout == "C" for a in (dst, src))
        if not ok or dst.dtype != src.dtype:
            return None
        sig = types.void(dst, types.intp, src, types.intp)

        def codegen(context, builder, signature, args):
            vec_type = ir.VectorType(_ELEMENT[signature.args[0].dtype], width)
            dst_ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], vec_type)
            src_ptr = _pointer_at(context, builder, signature.args[2], args[2], args[3], vec_type)
            total = builder.fadd(builder.load(dst_ptr, align=4), builder.load(src_ptr, align=4))
            builder.store(total, dst_ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add_from4(typingctx, dst, offset, src, src_offset):
    """``dst[offset + i] += src[src_offset + i]`` for ``i < 4``.

    Arrays of one precision, C-contiguous; no bounds check.
    """
    return _vector_add_from(4)(typingctx, dst, offset, src, src_offset)


@intrinsic
def add_from8(typingctx, dst, offset, src, src_offset):
    """``dst[offset + i] += src[src_offset + i]`` for ``i < 8`` (see :func:`add_from4`)."""
    return _vector_add_from(8)(typingctx, dst, offset, src, src_offset)


def _vector_scale(width: int):
    def typer(typingctx, dst, offset, src, src_offset, x):
        ok = all(isinstance(a, types.Array) and a.dtype in _ELEMENT and a.layout == "C" for a in (dst, src))
        if not ok or src.dtype != types.float64 or not isinstance(x, types.Float):
            return None
        sig = types.void(dst, types.intp, src, types.intp, types.float64)

        def codegen(context, builder, signature, args):
            wide = ir.VectorType(ir.DoubleType(), width)
            dst_type = ir.VectorType(_ELEMENT[signature.args[0].dtype], width)
            src_ptr = _pointer_at(context, builder, signature.args[2], args[2], args[3], wide)
            product = builder.fmul(builder.load(src_ptr, align=8), _vector_of(builder, wide, [args[4]] * width))
            if signature.args[0].dtype != types.float64:
                product = builder.fptrunc(product, dst_type)
            dst_ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], dst_type)
            builder.store(product, dst_ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def scale_into4(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] = src[src_offset + i] * x`` for ``i < 4``, as one vector.

    Float64 products (``src`` float64), rounded to the precision of ``dst``, written in one store (so that a vector
    load of them right after is forwarded from the store, not stalled). C-contiguous arrays; no bounds check.
    """
    return _vector_scale(4)(typingctx, dst, offset, src, src_offset, x)


@intrinsic
def scale_into8(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] = src[src_offset + i] * x`` for ``i < 8`` (see :func:`scale_into4`)."""
    return _vector_scale(8)(typingctx, dst, offset, src, src_offset, x)


@intrinsic
def prefetch(typingctx, arr, offset):
    """Ask for the cache line that holds ``arr[offset]``.

    A hint: no effect on results; an offset past the end of the array reads nothing.
    """
    if not (isinstance(arr, types.Array) and arr.layout == "C"):
        return None
    sig = types.void(arr, types.intp)

    def codegen(context, builder, signature, args):
        byte = ir.IntType(8)
        byte_ptr = byte.as_pointer()
        ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], byte)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = builder.module.declare_intrinsic(f"llvm.prefetch.{byte_ptr.intrinsic_name}", fnty=fnty)
        # read, keep in every cache level, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
