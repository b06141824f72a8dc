package pgwire

// SQLSTATEs pgrouter answers with, named as in Postgres's errcodes.txt.
const (
	SuccessfulCompletion = "00000"
	Warning              = "01000"

	ClientCannotConnect = "08001" // sqlclient_unable_to_establish_sqlconnection
	ConnectionFailure   = "08006"
	ProtocolViolation   = "08P01"

	FeatureNotSupported = "0A000"

	NumericValueOutOfRange       = "22003"
	CharacterNotInRepertoire     = "22021"
	InvalidParameterValue        = "22023"
	InvalidRowCountInLimitClause = "2201W"
	InvalidTextRepresentation    = "22P02"
	InvalidBinaryRepresentation  = "22P03"
	BadCopyFileFormat            = "22P04"
	InvalidTransactionState      = "25000"
	ReadOnlySQLTransaction       = "25006"
	InFailedSQLTransaction       = "25P02"
	IdleInTransactionTimeout     = "25P03"
	InvalidSQLStatementName      = "26000"
	InvalidAuthorizationSpec     = "28000"
	InvalidPassword              = "28P01"
	InvalidCursorName            = "34000"
	InvalidSavepointSpec         = "3B001"
	InvalidCatalogName           = "3D000"
	SyntaxError                  = "42601"
	UndefinedTable               = "42P01"
	UndefinedObject              = "42704"
	DatatypeMismatch             = "42804"
	DuplicateCursor              = "42P03"
	DuplicatePreparedStatement   = "42P05"
	TooManyConnections           = "53300"
	ConfigurationLimitExceeded   = "53400"
	ProgramLimitExceeded         = "54000"
	ObjectNotInPrerequisiteState = "55000"
	QueryCanceled                = "57014"
	AdminShutdown                = "57P01"
	CannotConnectNow             = "57P03"
	IOError                      = "58030"
	InternalError                = "XX000"
)
