package rules

import "fmt"

// FlowBypass returns the rules that let a flow skip the queue once one of
// its packets got a verdict carrying mark (nfqueue's
// Accept.WithMark(mark)): in the queue chain, a rule accepting packets
// whose connection mark has the mark's bits, then the queue rule for m; in
// a save chain that runs after it at the same hook, a rule copying a packet
// mark with those bits into the connection mark. It works on kernels where
// a verdict cannot set the connection mark itself. Install both with
// AddFlowBypass, or add them to chains of your own.
func FlowBypass(m Match, q Queue, mark uint32) (queueRules []Rule, saveRule Rule, err error) {
	if mark == 0 {
		return nil, Rule{}, fmt.Errorf("%w: flow bypass needs a non-zero mark", ErrInvalidRule)
	}
	bits := MarkMatch{Op: OpEq, Value: mark, Mask: mark}
	queueRules = []Rule{
		{Match: Match{CtMark: bits}, Action: ActionAccept},
		{Match: m, Action: ActionQueue, Queue: q},
	}
	saveRule = Rule{Match: Match{Mark: bits}, Action: ActionSaveMark}
	for _, r := range append(queueRules, saveRule) {
		if err := r.Validate(); err != nil {
			return nil, Rule{}, err
		}
	}
	return queueRules, saveRule, nil
}

// AddFlowBypass installs the rules of FlowBypass: the queue rules in a chain
// at hook with the given priority, named after the hook, and the save rule
// in a chain named "<hook>-save" ten priority steps after it.
func (t *Table) AddFlowBypass(hook Hook, priority int32, m Match, q Queue, mark uint32) error {
	queueRules, save, err := FlowBypass(m, q, mark)
	if err != nil {
		return err
	}
	if err := t.Add(Chain{Hook: hook, Priority: priority}, queueRules...); err != nil {
		return err
	}
	return t.Add(Chain{Name: hook.String() + "-save", Hook: hook, Priority: priority + 10}, save)
}
