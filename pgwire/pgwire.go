// Package pgwire is pgrouter's vocabulary of the PostgreSQL wire protocol:
// the message kinds (frontend and backend apart, so the client's Execute
// never reads like the server's ErrorResponse), the ReadyForQuery statuses,
// the SQLSTATEs pgrouter answers with, and constructors for its own
// ErrorResponses that always return fresh values.
//
// It is a leaf: it imports only pgconn/pgproto3, so every package that
// builds errors for clients (proxy, pool, topology, router) can use it.
package pgwire

// Frontend message kinds: what a client sends (after startup).
const (
	Bind            byte = 'B'
	Close           byte = 'C'
	CopyFail        byte = 'f'
	Describe        byte = 'D'
	Execute         byte = 'E'
	Flush           byte = 'H'
	FunctionCall    byte = 'F'
	Parse           byte = 'P'
	PasswordMessage byte = 'p' // also SASLInitialResponse and SASLResponse
	Query           byte = 'Q'
	Sync            byte = 'S'
	Terminate       byte = 'X'
)

// Message kinds both sides send (COPY data flows either way).
const (
	CopyData byte = 'd'
	CopyDone byte = 'c'
)

// Backend message kinds: what a server answers.
const (
	Authentication       byte = 'R'
	BackendKeyData       byte = 'K'
	BindComplete         byte = '2'
	CloseComplete        byte = '3'
	CommandComplete      byte = 'C'
	CopyBothResponse     byte = 'W'
	CopyInResponse       byte = 'G'
	CopyOutResponse      byte = 'H'
	DataRow              byte = 'D'
	EmptyQueryResponse   byte = 'I'
	ErrorResponse        byte = 'E'
	FunctionCallResponse byte = 'V'
	NoData               byte = 'n'
	NoticeResponse       byte = 'N'
	NotificationResponse byte = 'A'
	ParameterDescription byte = 't'
	ParameterStatus      byte = 'S'
	ParseComplete        byte = '1'
	PortalSuspended      byte = 's'
	ReadyForQuery        byte = 'Z'
	RowDescription       byte = 'T'
)

// ReadyForQuery statuses: the transaction state the server reports.
const (
	TxIdle   byte = 'I' // not in a transaction block
	TxActive byte = 'T' // in a transaction block
	TxFailed byte = 'E' // in a failed transaction block (queries refused until it ends)
)

// What Describe and Close name.
const (
	ObjectStatement byte = 'S'
	ObjectPortal    byte = 'P'
)

// The one-byte answers to SSLRequest and GSSENCRequest.
const (
	EncryptionAccepted byte = 'S' // go on with the TLS handshake
	EncryptionRefused  byte = 'N' // go on unencrypted (or close)
)
