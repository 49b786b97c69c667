package rules_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/nfqueue-go/nfqueue/rules"
)

// A temporary rule for a command-line tool: queue DNS queries to queue 0,
// with bypass so that traffic keeps flowing if the program dies, removed
// again when the program ends.
func ExampleOpen() {
	m, err := rules.ParseMatch("udp dport 53")
	if err != nil {
		log.Fatal(err)
	}
	t, err := rules.Open(&rules.Config{Table: "nfq-watch"})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	err = t.Add(rules.Chain{Hook: rules.HookOutput},
		rules.Rule{Match: m, Queue: rules.Queue{Num: 0, Flags: rules.QueueBypass}})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("queueing %v with the %v backend", m, t.Backend())
	// ... serve queue 0 ...
}

// The flow-bypass pattern: a verdict marks a packet, a later chain saves
// the mark into the connection mark, and packets of marked connections
// skip the queue.
func ExampleTable_Add_flowBypass() {
	t, err := rules.Open(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	in := rules.Chain{Hook: rules.HookInput, Priority: rules.PriorityFilter}
	save := rules.Chain{Name: "save-mark", Hook: rules.HookInput, Priority: rules.PriorityFilter + 10}
	must := func(spec string) rules.Rule {
		r, err := rules.ParseRule(spec)
		if err != nil {
			log.Fatal(err)
		}
		return r
	}
	if err := t.Add(in, must("ct mark 0x1 accept"), must("tcp dport 8080 queue num 0")); err != nil {
		log.Fatal(err)
	}
	if err := t.Add(save, must("meta mark != 0 ct mark set meta mark")); err != nil {
		log.Fatal(err)
	}
}

func ExampleParseMatch() {
	m, err := rules.ParseMatch("ip saddr 10.0.0.0/8 tcp dport 80-90")
	fmt.Println(m.SrcAddr, m.Proto, m.DstPort, err)

	_, err = rules.ParseMatch("udp dport 53 tcp")
	fmt.Println(errors.Is(err, rules.ErrInvalidSpec))
	fmt.Println(err)
	// Output:
	// 10.0.0.0/8 tcp 80-90 <nil>
	// true
	// rules: invalid rule spec "udp dport 53 tcp": at "tcp" (offset 13): conflicts with the earlier protocol udp
}

func ExampleRule_String() {
	r := rules.Rule{
		Match: rules.Match{Proto: rules.ProtoUDP, DstPort: rules.Port(53)},
		Queue: rules.Queue{Num: 2, Total: 4, Flags: rules.QueueBypass | rules.QueueFanout},
	}
	fmt.Println(r)
	// Output: udp dport 53 queue num 2-5 bypass fanout
}
