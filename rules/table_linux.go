package rules

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the package's own nftables table (or pair of ip and ip6 tables,
// see the package documentation) in one network namespace. Its methods are
// safe for concurrent use.
type Table struct {
	mu      sync.Mutex
	conn    *nftables.Conn
	name    string
	backend Backend
	tables  []*nftables.Table
	chains  []Chain // in creation order, with names filled in
	nsFile  *os.File
	closed  bool
}

// testForceSplit makes Open use an ip and an ip6 table even where the inet
// family works, so that tests can exercise that path on any kernel.
var testForceSplit bool

// Open creates the package's table and probes the queue backend (see the
// package documentation). A nil cfg means the zero Config.
//
// Errors match ErrTableExists when the table exists already (see
// [Config.Replace]), ErrUnsupported when the kernel can queue neither way,
// ErrInvalidRule for a bad Config, and otherwise carry the kernel's errno
// (errors.Is(err, os.ErrPermission) without CAP_NET_ADMIN).
func Open(cfg *Config) (*Table, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	t := &Table{name: c.Table}
	fd := c.NetNSFd
	if fd == 0 && c.NetNSPath != "" {
		f, err := os.Open(c.NetNSPath)
		if err != nil {
			return nil, fmt.Errorf("rules: open network namespace: %w", err)
		}
		t.nsFile = f
		fd = int(f.Fd())
	}
	conn, err := nftables.New(nftables.WithNetNSFd(fd), nftables.AsLasting())
	if err != nil {
		t.closeNS()
		return nil, fmt.Errorf("rules: netlink: %w", err)
	}
	t.conn = conn
	if err := t.probe(c); err != nil {
		t.release()
		return nil, err
	}
	if err := t.create(c.Replace); err != nil {
		t.release()
		return nil, err
	}
	return t, nil
}

func (t *Table) closeNS() {
	if t.nsFile != nil {
		t.nsFile.Close()
		t.nsFile = nil
	}
}

func (t *Table) release() {
	t.conn.CloseLasting()
	t.closeNS()
}

// refused reports whether err is the kernel saying it lacks something
// (an expression, or support for a family), as opposed to e.g. EPERM.
func refused(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// probe chooses the backend and the table families.
func (t *Table) probe(c Config) error {
	candidates := []Backend{BackendQueueExpr, BackendXtTarget}
	if c.Backend != BackendAuto {
		candidates = []Backend{c.Backend}
	}
	var errs attemptErrors
	for _, b := range candidates {
		fams := [][]Family{{c.Family}}
		if c.Family == FamilyInet && b == BackendXtTarget {
			// nft_compat may refuse the inet family (it serves the
			// families iptables knows); an ip and an ip6 table then
			// do the same job.
			fams = [][]Family{{FamilyInet}, {FamilyIPv4, FamilyIPv6}}
			if testForceSplit {
				fams = fams[1:]
			}
		}
		for _, fs := range fams {
			err := t.tryBackend(b, fs)
			if err == nil {
				t.backend = b
				for _, f := range fs {
					t.tables = append(t.tables, &nftables.Table{Name: t.name, Family: nftFamily(f)})
				}
				return nil
			}
			if !refused(err) {
				return fmt.Errorf("rules: probe %v: %w", b, err)
			}
			errs = append(errs, fmt.Errorf("%v refused in %v: %w", b, familyList(fs), errnoOf(err)))
		}
	}
	return fmt.Errorf("%w: %w", ErrUnsupported, errs)
}

// attemptErrors joins the errors of the probes on one line.
type attemptErrors []error

func (e attemptErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e attemptErrors) Unwrap() []error { return e }

// errnoOf returns the errno inside err, which reads better than the
// layers of netlink wrapping around it, or err itself.
func errnoOf(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func familyList(fs []Family) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.String()
	}
	return strings.Join(s, "+")
}

// tryBackend asks the kernel to accept a queue rule of backend b in tables
// of families fs, in one batch that also deletes the tables again, so that
// nothing is left whatever the outcome. The rule is in a chain without a
// hook, so no packet ever reaches it.
func (t *Table) tryBackend(b Backend, fs []Family) error {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	name := t.name + "-probe-" + hex.EncodeToString(rnd[:])
	for _, f := range fs {
		tab := t.conn.CreateTable(&nftables.Table{Name: name, Family: nftFamily(f)})
		ch := t.conn.AddChain(&nftables.Chain{Name: "probe", Table: tab})
		t.conn.AddRule(&nftables.Rule{Table: tab, Chain: ch,
			Exprs: queueExprs(Queue{Num: 0, Flags: QueueBypass}, b)})
		t.conn.DelTable(tab)
	}
	return t.conn.Flush()
}

// create makes the package's tables, exclusively: a table that exists
// already is someone else's unless replace is set.
func (t *Table) create(replace bool) error {
	for _, tab := range t.tables {
		if replace {
			t.conn.AddTable(tab) // no-op if it exists, so that the delete succeeds
			t.conn.DelTable(tab)
		}
		t.conn.CreateTable(tab)
	}
	err := t.conn.Flush()
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%w: %s (%v)", ErrTableExists, t.name, t.Families())
	}
	if err != nil {
		return fmt.Errorf("rules: create table %s: %w", t.name, err)
	}
	return nil
}

// Name returns the name of the package's table.
func (t *Table) Name() string { return t.name }

// Backend returns the queue backend chosen by Open:
// BackendQueueExpr or BackendXtTarget.
func (t *Table) Backend() Backend { return t.backend }

// Families returns the families of the nftables tables in use: [FamilyInet]
// alone, a single configured family, or FamilyIPv4 and FamilyIPv6 when the
// backend refused the inet family.
func (t *Table) Families() []Family {
	fs := make([]Family, len(t.tables))
	for i, tab := range t.tables {
		fs[i] = familyOf(tab.Family)
	}
	return fs
}

// Add creates the base chain c if it does not exist yet and appends rules to
// it, in order, in one atomic batch: either all are installed or none.
// Adding to an existing chain name needs the same hook and priority.
// Rules are checked before anything is sent; errors for bad rules match
// ErrInvalidRule, a rule that none of the tables can hold included.
func (t *Table) Add(c Chain, rules ...Rule) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.Name = c.name()
	type planned struct {
		tab   *nftables.Table
		exprs [][]expr.Any
		udata [][]byte
	}
	plan := make([]planned, len(t.tables))
	for i, tab := range t.tables {
		plan[i].tab = tab
	}
	for n, r := range rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("rule %d (%s): %w", n+1, r, err)
		}
		rf, _ := r.Match.installFamily()
		placed := false
		for i := range plan {
			tf := familyOf(plan[i].tab.Family)
			if tf != FamilyInet && rf != FamilyInet && tf != rf {
				continue
			}
			ex, err := ruleExprs(r, tf, t.backend)
			if err != nil {
				return fmt.Errorf("rule %d (%s): %w", n+1, r, err)
			}
			comment := r.Comment
			if comment == "" {
				comment = r.String()
			}
			plan[i].exprs = append(plan[i].exprs, ex)
			plan[i].udata = append(plan[i].udata, commentUserData(comment))
			placed = true
		}
		if !placed {
			return fmt.Errorf("rule %d (%s): %w: it cannot apply to a table of family %v", n+1, r, ErrInvalidRule, t.Families())
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	isNew := true
	for _, old := range t.chains {
		if old.Name == c.Name {
			if old != c {
				return fmt.Errorf("%w: chain %s exists with hook %v priority %d", ErrInvalidRule, c.Name, old.Hook, old.Priority)
			}
			isNew = false
		}
	}
	for _, p := range plan {
		ch := &nftables.Chain{Name: c.Name, Table: p.tab}
		if isNew {
			policy := nftables.ChainPolicyAccept
			prio := nftables.ChainPriority(c.Priority)
			hook := nftHook(c.Hook)
			ch.Hooknum = &hook
			ch.Priority = &prio
			ch.Type = nftables.ChainTypeFilter
			ch.Policy = &policy
			t.conn.AddChain(ch)
		}
		for i := range p.exprs {
			t.conn.AddRule(&nftables.Rule{Table: p.tab, Chain: ch, Exprs: p.exprs[i], UserData: p.udata[i]})
		}
	}
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("rules: add to chain %s of table %s: %w", c.Name, t.name, err)
	}
	if isNew {
		t.chains = append(t.chains, c)
	}
	return nil
}

// Chains returns the chains created by Add, in creation order, with their
// names filled in.
func (t *Table) Chains() []Chain {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Chain(nil), t.chains...)
}

// Rules lists the rules installed in the package's chains as the kernel
// reports them, with their counters, chain by chain in creation order.
func (t *Table) Rules() ([]RuleInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	var out []RuleInfo
	for _, tab := range t.tables {
		for _, c := range t.chains {
			rs, err := t.conn.GetRules(tab, &nftables.Chain{Name: c.Name, Table: tab})
			if err != nil {
				return nil, fmt.Errorf("rules: list chain %s of table %s: %w", c.Name, t.name, err)
			}
			for _, r := range rs {
				ri := RuleInfo{Family: familyOf(tab.Family), Chain: c.Name, Handle: r.Handle, Comment: commentFromUserData(r.UserData)}
				for _, e := range r.Exprs {
					if ctr, ok := e.(*expr.Counter); ok {
						ri.Packets, ri.Bytes = ctr.Packets, ctr.Bytes
					}
				}
				out = append(out, ri)
			}
		}
	}
	return out, nil
}

// Delete removes one rule listed by Rules.
func (t *Table) Delete(ri RuleInfo) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	for _, tab := range t.tables {
		if familyOf(tab.Family) != ri.Family {
			continue
		}
		err := t.conn.DelRule(&nftables.Rule{Table: tab, Chain: &nftables.Chain{Name: ri.Chain, Table: tab}, Handle: ri.Handle})
		if err == nil {
			err = t.conn.Flush()
		}
		if err != nil {
			return fmt.Errorf("rules: delete rule %d of chain %s: %w", ri.Handle, ri.Chain, err)
		}
		return nil
	}
	return fmt.Errorf("%w: no %v table", ErrInvalidRule, ri.Family)
}

// Close deletes the package's table with all its chains and rules, and
// releases the netlink socket. A table that someone else deleted already
// is not an error. Close is idempotent; later calls return nil.
//
// Deleting a base chain unregisters its hook, and the kernel then drops
// every packet waiting in any queue of the network namespace, other
// programs' included. To lose nothing, delete the queue rules first
// (Delete), give the packets still queued their verdicts, then Close.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	defer t.release()
	var errs []error
	for _, tab := range t.tables {
		// One batch per table, so that a table deleted from outside does
		// not keep the other one alive.
		t.conn.DelTable(tab)
		if err := t.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rules: delete table %v %s: %w", familyOf(tab.Family), t.name, err))
		}
	}
	return errors.Join(errs...)
}
