// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ModelSchema} from "./ITensor.sol";

/// @notice The terms the hub reads on every request; packed into one storage slot.
struct ModelTerms {
    uint96 fee;
    uint16 ownerShareBps;
    uint8 decimals;
    bool registered;
    bool deprecated;
}

/// @notice Everything known about a model, for off-chain readers.
struct ModelInfo {
    bytes32 modelId;
    address owner;
    uint96 fee;
    uint16 ownerShareBps;
    uint8 decimals;
    bool deprecated;
    uint64 registeredAt;
    string uri;
    ModelSchema schema;
}

/// @title Registry of ONNX models, each identified by the sha256 of its bytes.
interface IModelRegistry {
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        string uri,
        uint96 fee,
        uint16 ownerShareBps,
        uint8 decimals,
        ModelSchema schema
    );
    event ModelFeeChanged(bytes32 indexed modelId, uint96 oldFee, uint96 newFee);
    event ModelUriChanged(bytes32 indexed modelId, string uri);
    event ModelDeprecated(bytes32 indexed modelId);
    event ModelOwnershipTransferred(
        bytes32 indexed modelId,
        address indexed previousOwner,
        address indexed newOwner
    );

    error ModelRegistry__ZeroModelId();
    error ModelRegistry__AlreadyRegistered(bytes32 modelId, address owner);
    error ModelRegistry__NotRegistered(bytes32 modelId);
    error ModelRegistry__NotModelOwner(bytes32 modelId, address caller, address owner);
    error ModelRegistry__AlreadyDeprecated(bytes32 modelId);
    error ModelRegistry__EmptyUri();
    error ModelRegistry__OwnerShareTooHigh(uint16 ownerShareBps, uint16 maxOwnerShareBps);
    error ModelRegistry__DecimalsTooHigh(uint8 decimals, uint8 maxDecimals);
    error ModelRegistry__EmptySchema();
    error ModelRegistry__InvalidTensorSpec(bool isInput, uint256 index, string reason);
    error ModelRegistry__ZeroAddress();

    /// @notice Register a model. `modelId` is the sha256 of the ONNX bytes found at `uri`;
    /// workers refuse to run bytes that do not hash to it.
    function registerModel(
        bytes32 modelId,
        string calldata uri,
        ModelSchema calldata schema,
        uint8 decimals,
        uint96 fee,
        uint16 ownerShareBps
    ) external;

    function setFee(bytes32 modelId, uint96 newFee) external;
    function setUri(bytes32 modelId, string calldata uri) external;
    function deprecate(bytes32 modelId) external;
    function transferModelOwnership(bytes32 modelId, address newOwner) external;

    function terms(bytes32 modelId) external view returns (ModelTerms memory);
    function ownerOf(bytes32 modelId) external view returns (address);
    /// @notice Who is paid for a call of `modelId`, and which share of the fee they earn.
    function payoutOf(bytes32 modelId) external view returns (address owner, uint16 ownerShareBps);
    function getModel(bytes32 modelId) external view returns (ModelInfo memory);
    function isActive(bytes32 modelId) external view returns (bool);
    function modelCount() external view returns (uint256);
    function modelIdAt(uint256 index) external view returns (bytes32);
}
