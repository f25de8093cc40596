package redislimit

// UseCallerClock makes l decide with the now passed to Take instead of the
// Redis server's clock, so that tests can step through time.
func UseCallerClock(l *Limiter) { l.callerClock = true }
