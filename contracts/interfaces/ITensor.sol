// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The canonical tensor form that gradnet passes on chain.
/// @notice Inputs and outputs travel as `abi.encode(Tensor[])`. Element types use the ONNX
/// `TensorProto.DataType` codes so that a schema reads the same on chain and in the ONNX file.
/// Floats travel as fixed-point integers: `value = round_half_even(x * 10**decimals)`.
/// Numeric data sits in `values` (row-major), string data in `strings`; the other stays empty.
struct Tensor {
    string name;
    uint8 dtype;
    uint8 decimals;
    uint32[] shape;
    int256[] values;
    string[] strings;
}

/// @notice One named input or output of a model. A shape entry of -1 is a dynamic axis
/// (a batch axis, say); every other entry is the exact size of that axis.
struct TensorSpec {
    string name;
    uint8 dtype;
    int64[] shape;
}

/// @notice What a worker needs to validate an input before it runs the model.
struct ModelSchema {
    TensorSpec[] inputs;
    TensorSpec[] outputs;
}

/// @notice ONNX element types that gradnet encodes. The numbers are ONNX's own.
library DType {
    uint8 internal constant FLOAT = 1;
    uint8 internal constant INT32 = 6;
    uint8 internal constant INT64 = 7;
    uint8 internal constant STRING = 8;
    uint8 internal constant BOOL = 9;
    uint8 internal constant DOUBLE = 11;

    function isSupported(uint8 dtype) internal pure returns (bool) {
        return
            dtype == FLOAT ||
            dtype == INT32 ||
            dtype == INT64 ||
            dtype == STRING ||
            dtype == BOOL ||
            dtype == DOUBLE;
    }
}
