package core

// TagTimesLen exposes how many tag invalidation times the cache keeps.
func TagTimesLen(c *Cache) int { return c.tags.len() }
