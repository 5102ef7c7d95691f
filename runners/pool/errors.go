package pool

// BodyError is a failure reading the client's request body (the client went
// away, or the body limit was hit). Every kind of worker reports it this
// way, so the gateway maps it in one place.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// AppError is a failure the app itself reported (an exception before the
// response head, a handler that aborted): the worker is fine.
type AppError struct{ Msg string }

func (e *AppError) Error() string { return "app error: " + e.Msg }
