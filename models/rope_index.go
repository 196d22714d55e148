package models

import "fmt"

// padPosition is the position id given to padding (Hugging Face fills
// masked positions with 1); it never influences a real token.
const padPosition = 1

// RopeIndex computes Qwen2-VL's multimodal RoPE position ids for one row
// (Hugging Face get_rope_index). ids is the row's token ids and mask its
// attention mask (1 = real token, 0 = padding, any layout); grids holds the
// (t, h, w) patch grid of each image in the order its <|image_pad|> block
// appears, and merge the spatial merge size (2).
//
// Text tokens get the next position on all three rows (temporal, height,
// width). An image block of t·(h/merge)·(w/merge) pads starting at position
// p gets (p+ti, p+hi, p+wi) for each merged cell, and the text after it
// continues from the block's largest position + 1. Padding gets 1. It
// returns pos[r][i] for row r ∈ {0, 1, 2} and the position the next
// generated token takes. The pads must match the grids exactly, else the
// error wraps ErrImageTokens.
func RopeIndex(ids []int, mask []int64, imagePad int, grids [][3]int64, merge int) (pos [3][]int64, next int64, err error) {
	if len(mask) != len(ids) {
		return pos, 0, fmt.Errorf("%w: %d ids but %d mask values", ErrBadRequest, len(ids), len(mask))
	}
	if merge <= 0 {
		return pos, 0, fmt.Errorf("%w: merge size %d", ErrBadRequest, merge)
	}
	for r := range pos {
		pos[r] = make([]int64, len(ids))
	}
	cur, img := int64(0), 0
	for i := 0; i < len(ids); {
		if mask[i] == 0 {
			for r := range pos {
				pos[r][i] = padPosition
			}
			i++
			continue
		}
		if ids[i] != imagePad {
			for r := range pos {
				pos[r][i] = cur
			}
			cur++
			i++
			continue
		}
		if img >= len(grids) {
			return pos, 0, fmt.Errorf("%w: more <|image_pad|> blocks than the %d image(s) given", ErrImageTokens, len(grids))
		}
		n, err := placeImage(ids, mask, i, imagePad, grids[img], merge, cur, &pos)
		if err != nil {
			return pos, 0, fmt.Errorf("image %d: %w", img, err)
		}
		g := grids[img]
		cur += max(g[0], g[1]/int64(merge), g[2]/int64(merge))
		i += n
		img++
	}
	if img != len(grids) {
		return pos, 0, fmt.Errorf("%w: %d image(s) given but the prompt has %d <|image_pad|> block(s)", ErrImageTokens, len(grids), img)
	}
	return pos, cur, nil
}

// placeImage writes the positions of the image block starting at ids[at]
// and returns its token count.
func placeImage(ids []int, mask []int64, at, imagePad int, g [3]int64, merge int, start int64, pos *[3][]int64) (int, error) {
	m := int64(merge)
	if g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || g[1]%m != 0 || g[2]%m != 0 {
		return 0, fmt.Errorf("%w: grid %v is not a positive multiple of merge %d", ErrImageTokens, g, merge)
	}
	t, h, w := g[0], g[1]/m, g[2]/m
	n := int(t * h * w)
	if at+n > len(ids) {
		return 0, fmt.Errorf("%w: needs %d <|image_pad|> tokens, the prompt ends after %d", ErrImageTokens, n, len(ids)-at)
	}
	for j := range n {
		if ids[at+j] != imagePad || mask[at+j] == 0 {
			return 0, fmt.Errorf("%w: needs %d <|image_pad|> tokens, found %d", ErrImageTokens, n, j)
		}
		k := int64(j)
		pos[0][at+j] = start + k/(h*w)
		pos[1][at+j] = start + (k/w)%h
		pos[2][at+j] = start + k%w
	}
	return n, nil
}
