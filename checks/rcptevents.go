package checks

// The engine's own events at RCPT time. They carry facts only: the
// verdict log (checks/verdictlog) words their lines, as it does for every
// other event.

// RcptError is an RCPT-time check that could not decide (the recipient is
// accepted). Logged as "Check <check> on recipient <rcpt>: <error>".
type RcptError struct {
	Check, Rcpt string
	Err         error
}

// RcptMonitor is a refusal monitor mode held back. Logged as "Monitor:
// recipient <rcpt> would get <code> <reply>".
type RcptMonitor struct {
	Rcpt, Code, Reply string
}
