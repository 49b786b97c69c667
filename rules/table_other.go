//go:build !linux

package rules

// Table is the package's own nftables table. Outside Linux it cannot be
// opened.
type Table struct{}

// Open returns ErrUnsupported: nftables exists only on Linux.
func Open(cfg *Config) (*Table, error) { return nil, ErrUnsupported }

// Name returns "".
func (t *Table) Name() string { return "" }

// Backend returns BackendAuto.
func (t *Table) Backend() Backend { return BackendAuto }

// Families returns nil.
func (t *Table) Families() []Family { return nil }

// Add returns ErrUnsupported.
func (t *Table) Add(c Chain, rules ...Rule) error { return ErrUnsupported }

// Chains returns nil.
func (t *Table) Chains() []Chain { return nil }

// Rules returns ErrUnsupported.
func (t *Table) Rules() ([]RuleInfo, error) { return nil, ErrUnsupported }

// Delete returns ErrUnsupported.
func (t *Table) Delete(ri RuleInfo) error { return ErrUnsupported }

// Close returns nil.
func (t *Table) Close() error { return nil }
