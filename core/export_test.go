package core

// TagTimesLen exposes how many tag invalidation times the cache keeps.
func TagTimesLen(c *Cache) int { return c.tags.len() }

// RunningFlights counts the factories running now.
func RunningFlights(c *Cache) int {
	n := 0
	for i := range c.flights.shards {
		s := &c.flights.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
