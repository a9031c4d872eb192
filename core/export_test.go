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

// L1Present reads key from c's L1 engine with nothing of strata's around
// it: the floor of an L1 hit (BenchmarkL1Hit).
func L1Present(c *Cache, key string) bool {
	_, ok := c.l1.c.GetIfPresent(key)
	return ok
}
