// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SystemContract} from "./base/SystemContract.sol";
import {IModelRegistry, ModelTerms, ModelInfo} from "./interfaces/IModelRegistry.sol";
import {ModelSchema, TensorSpec, DType} from "./interfaces/ITensor.sol";

/// @title ModelRegistry
/// @notice Models are registered by the sha256 of their ONNX bytes. The hub reads one packed
/// slot (`terms`) per request; the URI and schema are for workers and are read off chain.
contract ModelRegistry is IModelRegistry, SystemContract {
    /// @notice The owner's share may not exceed this, so owner + protocol shares stay below 100%.
    uint16 public constant MAX_OWNER_SHARE_BPS = 8_000;
    uint8 public constant MAX_DECIMALS = 18;

    struct Record {
        address owner;
        uint64 registeredAt;
        string uri;
        bytes schema; // abi.encode(ModelSchema)
    }

    mapping(bytes32 modelId => ModelTerms) private _terms;
    mapping(bytes32 modelId => Record) private _records;
    bytes32[] private _modelIds;

    function initialize(address owner_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
    }

    modifier onlyModelOwner(bytes32 modelId) {
        address owner_ = _records[modelId].owner;
        if (owner_ == address(0)) revert ModelRegistry__NotRegistered(modelId);
        if (msg.sender != owner_) revert ModelRegistry__NotModelOwner(modelId, msg.sender, owner_);
        _;
    }

    /// @inheritdoc IModelRegistry
    function registerModel(
        bytes32 modelId,
        string calldata uri,
        ModelSchema calldata schema,
        uint8 decimals,
        uint96 fee,
        uint16 ownerShareBps
    ) external {
        if (modelId == bytes32(0)) revert ModelRegistry__ZeroModelId();
        address existing = _records[modelId].owner;
        if (existing != address(0)) revert ModelRegistry__AlreadyRegistered(modelId, existing);
        if (bytes(uri).length == 0) revert ModelRegistry__EmptyUri();
        if (ownerShareBps > MAX_OWNER_SHARE_BPS) {
            revert ModelRegistry__OwnerShareTooHigh(ownerShareBps, MAX_OWNER_SHARE_BPS);
        }
        if (decimals > MAX_DECIMALS) revert ModelRegistry__DecimalsTooHigh(decimals, MAX_DECIMALS);
        _validateSchema(schema);

        _terms[modelId] = ModelTerms({
            fee: fee,
            ownerShareBps: ownerShareBps,
            decimals: decimals,
            registered: true,
            deprecated: false
        });
        _records[modelId] = Record({
            owner: msg.sender,
            registeredAt: uint64(block.timestamp),
            uri: uri,
            schema: abi.encode(schema)
        });
        _modelIds.push(modelId);
        emit ModelRegistered(modelId, msg.sender, uri, fee, ownerShareBps, decimals, schema);
    }

    /// @inheritdoc IModelRegistry
    function setFee(bytes32 modelId, uint96 newFee) external onlyModelOwner(modelId) {
        uint96 oldFee = _terms[modelId].fee;
        _terms[modelId].fee = newFee;
        emit ModelFeeChanged(modelId, oldFee, newFee);
    }

    /// @inheritdoc IModelRegistry
    function setUri(bytes32 modelId, string calldata uri) external onlyModelOwner(modelId) {
        if (bytes(uri).length == 0) revert ModelRegistry__EmptyUri();
        _records[modelId].uri = uri;
        emit ModelUriChanged(modelId, uri);
    }

    /// @inheritdoc IModelRegistry
    /// @dev The model's owner may deprecate it; so may the registry's owner (governance), to
    /// stop new requests for a model found harmful. Requests already made are still answered.
    function deprecate(bytes32 modelId) external {
        address owner_ = _records[modelId].owner;
        if (owner_ == address(0)) revert ModelRegistry__NotRegistered(modelId);
        if (msg.sender != owner_ && msg.sender != owner()) {
            revert ModelRegistry__NotModelOwner(modelId, msg.sender, owner_);
        }
        if (_terms[modelId].deprecated) revert ModelRegistry__AlreadyDeprecated(modelId);
        _terms[modelId].deprecated = true;
        emit ModelDeprecated(modelId);
    }

    /// @inheritdoc IModelRegistry
    function transferModelOwnership(bytes32 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ModelRegistry__ZeroAddress();
        _records[modelId].owner = newOwner;
        emit ModelOwnershipTransferred(modelId, msg.sender, newOwner);
    }

    /// @inheritdoc IModelRegistry
    function terms(bytes32 modelId) external view returns (ModelTerms memory) {
        return _terms[modelId];
    }

    /// @inheritdoc IModelRegistry
    function ownerOf(bytes32 modelId) external view returns (address) {
        return _records[modelId].owner;
    }

    /// @inheritdoc IModelRegistry
    function payoutOf(bytes32 modelId) external view returns (address, uint16) {
        return (_records[modelId].owner, _terms[modelId].ownerShareBps);
    }

    /// @inheritdoc IModelRegistry
    function isActive(bytes32 modelId) external view returns (bool) {
        ModelTerms memory t = _terms[modelId];
        return t.registered && !t.deprecated;
    }

    /// @inheritdoc IModelRegistry
    function getModel(bytes32 modelId) external view returns (ModelInfo memory info) {
        Record storage r = _records[modelId];
        if (r.owner == address(0)) revert ModelRegistry__NotRegistered(modelId);
        ModelTerms memory t = _terms[modelId];
        info = ModelInfo({
            modelId: modelId,
            owner: r.owner,
            fee: t.fee,
            ownerShareBps: t.ownerShareBps,
            decimals: t.decimals,
            deprecated: t.deprecated,
            registeredAt: r.registeredAt,
            uri: r.uri,
            schema: abi.decode(r.schema, (ModelSchema))
        });
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _modelIds.length;
    }

    /// @inheritdoc IModelRegistry
    function modelIdAt(uint256 index) external view returns (bytes32) {
        return _modelIds[index];
    }

    function _validateSchema(ModelSchema calldata schema) private pure {
        if (schema.inputs.length == 0 || schema.outputs.length == 0) revert ModelRegistry__EmptySchema();
        _validateSpecs(schema.inputs, true);
        _validateSpecs(schema.outputs, false);
    }

    function _validateSpecs(TensorSpec[] calldata specs, bool isInput) private pure {
        for (uint256 i = 0; i < specs.length; ++i) {
            TensorSpec calldata spec = specs[i];
            if (bytes(spec.name).length == 0)
                revert ModelRegistry__InvalidTensorSpec(isInput, i, "empty name");
            if (!DType.isSupported(spec.dtype)) {
                revert ModelRegistry__InvalidTensorSpec(isInput, i, "unsupported dtype");
            }
            for (uint256 d = 0; d < spec.shape.length; ++d) {
                if (spec.shape[d] < -1)
                    revert ModelRegistry__InvalidTensorSpec(isInput, i, "dimension below -1");
            }
            for (uint256 j = 0; j < i; ++j) {
                if (keccak256(bytes(specs[j].name)) == keccak256(bytes(spec.name))) {
                    revert ModelRegistry__InvalidTensorSpec(isInput, i, "duplicate name");
                }
            }
        }
    }
}
