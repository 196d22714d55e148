package backend

import (
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server"
)

// imageError reports an image of input i the bundle's image processor
// cannot take, as the server's 400 invalid_image.
func imageError(i int, err error) error {
	return &server.ImageError{Field: "image", Err: fmt.Errorf("input %d: %w", i, err)}
}

// mapErr turns the model's input errors into the server's 400 path and
// wraps everything else with what was running. models.ErrBadRequest,
// models.ErrImageTokens and models.ErrLetterToken become a
// *server.RequestError (400 invalid_request); preprocessing errors a
// *server.ImageError (400 invalid_image). The original error stays in the
// chain (errors.Is still finds it).
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var ie *server.ImageError
	var fe preprocessing.FormatError
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, preprocessing.ErrEmpty), errors.Is(err, preprocessing.ErrUnsupported), errors.As(err, &fe):
		return &server.ImageError{Field: "image", Err: fmt.Errorf("%s: %w", what, err)}
	case errors.Is(err, models.ErrBadRequest), errors.Is(err, models.ErrImageTokens), errors.Is(err, models.ErrLetterToken):
		return fmt.Errorf("%w: %w", &server.RequestError{Msg: what + ": the model cannot take this input"}, err)
	}
	return fmt.Errorf("backend: %s: %w", what, err)
}
