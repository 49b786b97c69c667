package nfqueue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

func TestCopyModeString(t *testing.T) {
	for m, want := range map[CopyMode]string{CopyPacket: "packet", CopyMeta: "meta", CopyNone: "none", 7: "copymode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("CopyMode(%d).String() = %q, want %q", m, got, want)
		}
	}
	if (Config{}).CopyMode != CopyPacket {
		t.Error("the zero CopyMode is not CopyPacket")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		bad  string // "" for valid, else part of the error
	}{
		{"zero", Config{}, ""},
		{"copy range at the maximum", Config{CopyRange: MaxCopyRange}, ""},
		{"copy range 1", Config{CopyRange: 1}, ""},
		{"copy meta", Config{CopyMode: CopyMeta}, ""},
		{"every flag", Config{FailOpen: true, Conntrack: true, UIDGID: true, SecCtx: true, DisableGSO: true, NoENOBUFS: true}, ""},
		{"bind retry", Config{BindRetry: time.Second}, ""},
		{"read buffer default", Config{ReadBufferSize: -1}, ""},
		{"read buffer 1 GiB", Config{ReadBufferSize: 1 << 30}, ""},
		{"verdict timeout", Config{VerdictTimeout: time.Millisecond, TimeoutVerdict: Accept.WithMark(1).WithPriority(2)}, ""},
		{"copy range over the maximum", Config{CopyRange: MaxCopyRange + 1}, "copy range 65532 over the maximum 65531"},
		{"copy range huge", Config{CopyRange: 1 << 31}, "over the maximum"},
		{"copy none", Config{CopyMode: CopyNone}, "CopyNone"},
		{"unknown copy mode", Config{CopyMode: 3}, "unknown copy mode 3"},
		{"copy range with copy meta", Config{CopyMode: CopyMeta, CopyRange: 100}, "copy range set with CopyMeta"},
		{"negative bind retry", Config{BindRetry: -1}, "negative BindRetry"},
		{"read buffer over 1 GiB", Config{ReadBufferSize: 1<<30 + 1}, "over 1 GiB"},
		{"negative verdict timeout", Config{VerdictTimeout: -time.Second}, "negative VerdictTimeout"},
		{"verdict timeout under 1ms", Config{VerdictTimeout: time.Microsecond}, "under 1ms"},
		{"timeout verdict with a payload", Config{VerdictTimeout: time.Second, TimeoutVerdict: Accept.WithPayload([]byte{1})}, "TimeoutVerdict"},
		{"timeout verdict with a connmark", Config{TimeoutVerdict: Accept.WithConnMark(1)}, "TimeoutVerdict"},
		{"timeout verdict defer", Config{TimeoutVerdict: Defer}, "TimeoutVerdict"},
		{"timeout verdict bypass on accept", Config{TimeoutVerdict: Accept.WithBypass()}, "TimeoutVerdict"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.bad != "" && !errors.Is(err, ErrInvalidConfig):
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			case tt.bad != "" && !strings.Contains(err.Error(), tt.bad):
				t.Errorf("err %q does not mention %q", err, tt.bad)
			}
		})
	}
}

const allFlags = wire.CfgFlagFailOpen | wire.CfgFlagConntrack | wire.CfgFlagGSO | wire.CfgFlagUIDGID | wire.CfgFlagSecCtx

// TestConfigBindMsg: the CONFIG request Open sends for each Config, and
// for the configurations with a golden fixture, its exact bytes (checked
// in internal/wire against what libnetfilter_queue sends).
func TestConfigBindMsg(t *testing.T) {
	for _, tt := range []struct {
		name   string
		queue  uint16
		cfg    Config
		want   wire.Config
		golden string
	}{
		{
			name: "zero config", queue: 258, cfg: Config{},
			want: wire.Config{Queue: 258, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyPacket,
				CopyRange: MaxCopyRange, Mask: allFlags, Flags: wire.CfgFlagGSO},
			golden: "bind-default",
		},
		{
			name: "copy range, queue length, fail-open, uid/gid", queue: 1,
			cfg: Config{CopyRange: 128, MaxQueueLen: 4096, FailOpen: true, UIDGID: true},
			want: wire.Config{Queue: 1, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyPacket,
				CopyRange: 128, MaxLen: 4096, Mask: allFlags, Flags: wire.CfgFlagFailOpen | wire.CfgFlagGSO | wire.CfgFlagUIDGID},
			golden: "bind-range-maxlen-failopen-uidgid",
		},
		{
			name: "copy meta", queue: 2, cfg: Config{CopyMode: CopyMeta},
			want: wire.Config{Queue: 2, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyMeta,
				CopyRange: 0, Mask: allFlags, Flags: wire.CfgFlagGSO},
			golden: "bind-copymeta",
		},
		{
			name: "every flag, GSO off", queue: 65535,
			cfg: Config{FailOpen: true, Conntrack: true, UIDGID: true, SecCtx: true, DisableGSO: true},
			want: wire.Config{Queue: 65535, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyPacket,
				CopyRange: MaxCopyRange, Mask: allFlags,
				Flags: wire.CfgFlagFailOpen | wire.CfgFlagConntrack | wire.CfgFlagUIDGID | wire.CfgFlagSecCtx},
		},
		{
			name: "GSO off alone sends flags 0 under the full mask", queue: 0, cfg: Config{DisableGSO: true},
			want: wire.Config{Queue: 0, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyPacket,
				CopyRange: MaxCopyRange, Mask: allFlags, Flags: 0},
		},
		{
			name: "options that are not sent", queue: 3,
			cfg: Config{ReadBufferSize: 1 << 20, NoENOBUFS: true, BindRetry: time.Second, DisableBatching: true, NetNS: "/x"},
			want: wire.Config{Queue: 3, HasCmd: true, Cmd: wire.CmdBind, HasParams: true, CopyMode: wire.CopyPacket,
				CopyRange: MaxCopyRange, Mask: allFlags, Flags: wire.CfgFlagGSO},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.validate(); err != nil {
				t.Fatal(err)
			}
			got := tt.cfg.bindMsg(tt.queue)
			if got != tt.want {
				t.Errorf("bindMsg(%d)\n got  %+v\n want %+v", tt.queue, got, tt.want)
			}
			if tt.golden != "" {
				littleEndianOnly(t)
				// The first request of a Conn has sequence 1|1<<31.
				equalBytes(t, tt.golden, wire.AppendConfig(nil, 1|1<<31, &got), goldenFixture(t, tt.golden))
			}
		})
	}
}

func TestConfigSizes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       Config
		copyRange uint32
		queueLen  uint32
		readBuf   int
	}{
		// 1024 × (65531 + 800) = 67,922,944 is over the 64 MiB cap.
		{"zero config", Config{}, MaxCopyRange, 1024, 64 << 20},
		{"copy meta", Config{CopyMode: CopyMeta}, 0, 1024, 1024 * 800},
		{"small range, long queue", Config{CopyRange: 128, MaxQueueLen: 4096}, 128, 4096, 4096 * 928},
		{"range 1, queue 1", Config{CopyRange: 1, MaxQueueLen: 1}, 1, 1, 801},
		{"huge queue is capped", Config{CopyMode: CopyMeta, MaxQueueLen: 1 << 31}, 0, 1 << 31, 64 << 20},
		{"no overflow at the extremes", Config{MaxQueueLen: 0xffffffff}, MaxCopyRange, 0xffffffff, 64 << 20},
		{"explicit size", Config{ReadBufferSize: 12345}, MaxCopyRange, 1024, 12345},
		{"system default", Config{ReadBufferSize: -1}, MaxCopyRange, 1024, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.copyRange(); got != tt.copyRange {
				t.Errorf("copyRange() = %d, want %d", got, tt.copyRange)
			}
			if got := tt.cfg.queueLen(); got != tt.queueLen {
				t.Errorf("queueLen() = %d, want %d", got, tt.queueLen)
			}
			if got := tt.cfg.readBuffer(); got != tt.readBuf {
				t.Errorf("readBuffer() = %d, want %d", got, tt.readBuf)
			}
		})
	}
}

func TestConfigFlags(t *testing.T) {
	for _, tt := range []struct {
		cfg   Config
		flags uint32
	}{
		{Config{}, wire.CfgFlagGSO},
		{Config{DisableGSO: true}, 0},
		{Config{FailOpen: true}, wire.CfgFlagFailOpen | wire.CfgFlagGSO},
		{Config{Conntrack: true}, wire.CfgFlagConntrack | wire.CfgFlagGSO},
		{Config{UIDGID: true}, wire.CfgFlagUIDGID | wire.CfgFlagGSO},
		{Config{SecCtx: true}, wire.CfgFlagSecCtx | wire.CfgFlagGSO},
	} {
		flags, mask := tt.cfg.flags()
		if flags != tt.flags || mask != allFlags {
			t.Errorf("%+v: flags %#x mask %#x, want %#x %#x", tt.cfg, flags, mask, tt.flags, allFlags)
		}
		// The kernel refuses flags at or above NFQA_CFG_F_MAX (1<<5).
		if flags >= 1<<5 {
			t.Errorf("flags %#x reach NFQA_CFG_F_MAX", flags)
		}
	}
}
