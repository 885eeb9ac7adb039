// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Where a request stands. Stored in the top byte of the request's commitment slot.
enum RequestState {
    None, // never created
    Pending, // fee escrowed, waiting for a node
    Fulfilled, // result recorded; fee held through the challenge window
    Failed, // a node answered with an error status; fee refunded to the requester
    Refunded, // nobody answered before the deadline; fee refunded to the requester
    Finalized, // challenge window passed; fee paid out by the settlement contract
    Challenged, // a verifier disputes the result; the fee stays held until the committee decides
    Overturned // the committee found the result wrong; fee refunded to the requester
}

/// @notice The status a node reports with its answer.
enum ResultStatus {
    Success, // `output` is the canonical encoding; keccak256(output) == outputHash
    SuccessOffchain, // output too large for the chain: `output` is abi.encode(string uri), outputHash hashes the stored bytes
    InvalidInput, // the input does not fit the model's schema or cannot be decoded
    InputUnavailable, // a large input could not be fetched or its bytes do not match inputHash
    ModelFailed // the model could not be loaded or failed while running
}

/// @notice What became of the consumer's callback. A callback never makes a fulfilment revert.
enum CallbackResult {
    NotRequested, // callbackGasLimit was 0
    Success,
    Reverted, // reverted or ran out of gas
    NoCode // the requester has no code (an EOA, or a destroyed contract)
}

/// @notice The full parameters of a request. The hub stores only a hash of this struct and
/// emits it whole in `InferenceRequested`; whoever acts on a request passes it back.
struct Request {
    uint256 requestId;
    bytes32 modelId;
    address requester; // pays, receives refunds and, when callbackGasLimit > 0, the callback
    uint32 callbackGasLimit;
    uint64 deadline; // unix seconds; after it the request can only be refunded
    uint256 fee; // escrowed wei
    bytes32 inputHash; // sha256 of the input bytes (inline or stored off chain)
    bool inputIsRef; // true: the input bytes live off chain, at the URI the request event carries
    uint8 redundancy; // how many distinct nodes answer: 1, or up to MAX_REDUNDANCY for agreement
}

/// @notice Where a redundant request's answers stand. `agreedKey` is zero until more than half
/// of `redundancy` nodes gave the same answer (`answerKey(status, outputHash)`).
struct Agreement {
    bytes32 requestHash; // keccak256(abi.encode(request)), kept for answers after agreement
    bytes32 agreedKey;
    uint8 answers;
    uint8 agreeing; // answers equal to agreedKey so far (late ones included)
}

/// @notice A recorded successful answer; hashed together with the request's commitment.
struct Fulfillment {
    address node;
    bytes32 outputHash;
    uint64 fulfilledAt;
}

/// @notice One answer in `fulfillBatch`.
struct FulfillParams {
    Request request;
    ResultStatus status;
    bytes output;
    bytes32 outputHash;
}

/// @notice Tunable hub limits; packed with the request counter into one slot.
struct HubParams {
    uint32 maxInputBytes;
    uint32 maxCallbackGasLimit;
    uint32 requestTimeout; // seconds from request to deadline
}

/// @title The request registry: escrow, commitments, fulfilment and consumer callbacks.
interface IInferenceHub {
    /// @notice `input` is the inline input (abi.encode(Tensor[])), or, when `request.inputIsRef`,
    /// the UTF-8 URI of the stored input bytes whose sha256 is `request.inputHash`.
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        Request request,
        bytes input
    );
    event InferenceFulfilled(
        uint256 indexed requestId,
        address indexed node,
        ResultStatus status,
        bytes32 outputHash,
        uint64 fulfilledAt,
        CallbackResult callbackResult,
        bytes output
    );
    event RequestRefunded(
        uint256 indexed requestId,
        address indexed requester,
        uint256 fee,
        RequestState reason
    );
    event RequestReleased(uint256 indexed requestId, uint256 fee);
    /// @notice One node's answer to a redundant request (the agreed one is also InferenceFulfilled).
    event AnswerSubmitted(
        uint256 indexed requestId,
        address indexed node,
        ResultStatus status,
        bytes32 outputHash,
        uint8 answers
    );
    /// @notice All `answers` of a redundant request are in and no answer won a majority: refunded.
    event NoAgreement(uint256 indexed requestId, uint8 answers);
    event ResultChallenged(uint256 indexed requestId, address indexed node);
    event ChallengeCleared(uint256 indexed requestId);
    /// @notice A dispute found the result wrong. The consumer got `rawInferenceOverturned` when it
    /// asked for callbacks; `callbackResult` says how that went.
    event InferenceOverturned(
        uint256 indexed requestId,
        address indexed node,
        bytes32 outputHash,
        bytes32 correctOutputHash,
        CallbackResult callbackResult
    );
    event HubParamsChanged(HubParams params);

    error Hub__ModelNotActive(bytes32 modelId);
    error Hub__FeeTooLow(bytes32 modelId, uint256 paid, uint256 required);
    error Hub__EmptyInput();
    error Hub__InputTooLarge(uint256 size, uint256 maxSize);
    error Hub__EmptyInputUri();
    error Hub__ZeroInputHash();
    error Hub__CallbackGasTooHigh(uint32 callbackGasLimit, uint32 maxCallbackGasLimit);
    error Hub__UnknownRequest(uint256 requestId);
    error Hub__CommitmentMismatch(uint256 requestId);
    error Hub__WrongState(uint256 requestId, RequestState state);
    error Hub__RequestExpired(uint256 requestId, uint64 deadline);
    error Hub__NotExpired(uint256 requestId, uint64 deadline);
    error Hub__NotInferenceNode(address node);
    error Hub__OutputHashMismatch(uint256 requestId, bytes32 claimed, bytes32 actual);
    error Hub__EmptyOutput(uint256 requestId);
    error Hub__InsufficientGasForCallback(uint256 requestId, uint32 callbackGasLimit);
    error Hub__OnlySettlement(address caller);
    error Hub__InvalidParams();
    error Hub__TransferFailed(address to, uint256 amount);
    error Hub__InvalidRedundancy(uint8 redundancy, uint8 maxRedundancy);
    error Hub__AlreadyAnswered(uint256 requestId, address node);
    error Hub__AnswersComplete(uint256 requestId);

    /// @notice Ask `modelId` to run on `input` (abi.encode(Tensor[])). Pays `msg.value` as the fee.
    /// A contract sets `callbackGasLimit` > 0 to receive `rawFulfillInference`; 0 means no callback.
    function requestInference(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external payable returns (uint256 requestId);

    /// @notice As `requestInference`, answered by `redundancy` distinct nodes (2..MAX_REDUNDANCY),
    /// paying the model's fee once per node. The first answer held by more than half of them is
    /// the result (one callback); the others' answers are still taken until all are in or the
    /// deadline passes. Nodes that agree share the fee; nodes that disagree can be slashed.
    function requestInferenceRedundant(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit,
        uint8 redundancy
    ) external payable returns (uint256 requestId);

    /// @notice As `requestInference`, for an input stored off chain: its sha256 and where to fetch it.
    function requestInferenceRef(
        bytes32 modelId,
        bytes32 inputSha256,
        string calldata inputUri,
        uint32 callbackGasLimit
    ) external payable returns (uint256 requestId);

    /// @notice Record a node's answer. Only an active INFERENCE node; only before the deadline.
    function fulfill(
        Request calldata request,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) external;

    /// @notice Record many answers in one transaction. Items that another node already answered
    /// or whose deadline passed are skipped; returns how many were recorded.
    function fulfillBatch(FulfillParams[] calldata items) external returns (uint256 recorded);

    /// @notice After the deadline, return the fee of an unanswered request to its requester.
    function refundExpired(Request calldata request) external;

    /// @notice Settlement hook: end the challenge hold and hand the fee to the settlement contract.
    function release(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external returns (uint256 fee);

    /// @notice Settlement hook: a verifier challenged this result; hold it until the dispute ends.
    function holdForDispute(Request calldata request, Fulfillment calldata fulfillment) external;

    /// @notice Settlement hook: the dispute ended. Upheld, the result can be finalised again;
    /// overturned, the fee is refunded and the consumer told `correctOutputHash`.
    function endDispute(
        Request calldata request,
        Fulfillment calldata fulfillment,
        bool overturned,
        bytes32 correctOutputHash
    ) external;

    function requestState(uint256 requestId) external view returns (RequestState);
    /// @notice A node's answer to a redundant request: `answerKey(status, outputHash)`, or zero.
    function answerOf(uint256 requestId, address node) external view returns (bytes32);
    function agreementOf(uint256 requestId) external view returns (Agreement memory);
    function answerKey(ResultStatus status, bytes32 outputHash) external pure returns (bytes32);
    function commitmentOf(uint256 requestId) external view returns (bytes32);
    function requestCount() external view returns (uint256);
    function params() external view returns (HubParams memory);
    function hashRequest(Request calldata request) external pure returns (bytes32);
    function hashFulfillment(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external pure returns (bytes32);
}
