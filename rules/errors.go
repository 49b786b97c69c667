package rules

import (
	"errors"
	"strconv"
)

var (
	// ErrInvalidRule is matched by every error about a [Rule], [Match],
	// [Queue], [Chain] or [Config] that cannot be installed as given. Such
	// errors are found before anything is sent to the kernel.
	ErrInvalidRule = errors.New("rules: invalid rule")

	// ErrInvalidSpec is matched by every error of [ParseMatch] and
	// [ParseRule]; the error is a [*SpecError].
	ErrInvalidSpec = errors.New("rules: invalid rule spec")

	// ErrTableExists means a table with the configured name and family
	// already exists, so it belongs to someone else (or is left over from a
	// program that did not exit cleanly; see [Config.Replace]).
	ErrTableExists = errors.New("rules: table already exists")

	// ErrUnsupported means the kernel has neither the nft queue expression
	// nor the xtables NFQUEUE target through nft_compat, or the platform
	// is not Linux.
	ErrUnsupported = errors.New("rules: no way to queue packets on this system")

	// ErrClosed is returned by the methods of a closed [Table].
	ErrClosed = errors.New("rules: table closed")
)

// SpecError describes why a rule spec string was refused. It matches
// [ErrInvalidSpec] with errors.Is.
type SpecError struct {
	// Spec is the whole string given to the parser.
	Spec string
	// Offset is the byte offset of the token at fault in Spec; at the end
	// of Spec when a token is missing.
	Offset int
	// Token is the token at fault; empty when a token is missing.
	Token string
	// Reason says what was wrong or expected.
	Reason string
}

// Error returns e.g. `rules: invalid rule spec "udp dport x": at "x"
// (offset 10): port must be a number from 1 to 65535`.
func (e *SpecError) Error() string {
	where := "at end"
	if e.Token != "" {
		where = "at " + strconv.Quote(e.Token) + " (offset " + strconv.Itoa(e.Offset) + ")"
	}
	return ErrInvalidSpec.Error() + " " + strconv.Quote(e.Spec) + ": " + where + ": " + e.Reason
}

// Unwrap returns ErrInvalidSpec.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }
