package checks

import (
	"fmt"
	"strings"
)

// OnTimeout is what a step that runs out of time (its own timeout or the
// chain deadline) does to the message. A local content check (lists,
// gtube, attachment, antivirus, whaling) that did not finish tempfails
// the message: load, which an attacker controls, must never turn into
// unchecked mail. A check that waits on outside lists (rbl, uribl,
// reputation look-ups, and spf, dkim, dmarc, helo with their own
// temperror results) goes on: the outside world being slow is no reason
// to refuse mail.
type OnTimeout int

// OnTimeout settings; the zero value is the safe one.
const (
	TimeoutTempfail OnTimeout = iota
	TimeoutContinue
)

var onTimeoutNames = [...]string{"tempfail", "continue"}

func (o OnTimeout) String() string {
	if o < 0 || int(o) >= len(onTimeoutNames) {
		return fmt.Sprintf("on_timeout(%d)", int(o))
	}
	return onTimeoutNames[o]
}

// ParseOnTimeout reads tempfail or continue.
func ParseOnTimeout(s string) (OnTimeout, error) {
	for i, n := range onTimeoutNames {
		if strings.EqualFold(s, n) {
			return OnTimeout(i), nil
		}
	}
	return 0, fmt.Errorf("checks: unknown on_timeout value %q (want tempfail or continue)", s)
}

// TimedOut reports whether this result ran out of time in a step whose
// on_timeout setting tempfails the message.
func (r Result) TimedOut() bool { return r.timedOut }
