package dns

import "time"

// SetClock replaces the clock the cache reads, for TTL tests.
func SetClock(c *Client, now func() time.Time) { c.now = now }
