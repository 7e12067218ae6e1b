// minLength and maxLength as ajv checks them (in code points, with its own counter and its own error
// messages), with the count skipped where the string's UTF-16 length already settles it.
//
// Counting code points walks every character: on a 5,000-record ingest body that was two thirds of
// the schema's cost (bench/README.md#ingestion-where-the-time-goes). A string has at most as many
// code points as UTF-16 units and at least half as many, so `s.length <= max` passes maxLength and
// `s.length >= 2 * min` passes minLength without counting; only strings between those bounds are
// counted. The answers are ajv's own in every case (test/schemas/string-length.test.ts compares them).
import { _, str, type Ajv, type CodeKeywordDefinition, type KeywordErrorDefinition } from 'ajv'
import { useFunc } from 'ajv/dist/compile/util.js'
import ucs2lengthModule from 'ajv/dist/runtime/ucs2length.js'

const ucs2length = (ucs2lengthModule as unknown as { default: ((s: string) => number) & { code: string } }).default

/** ajv's own error of limitLength: the same message and params. */
const error: KeywordErrorDefinition = {
  message: ({ keyword, schemaCode }) => str`must NOT have ${keyword === 'maxLength' ? 'more' : 'fewer'} than ${schemaCode} characters`,
  params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
}

const limitLength: CodeKeywordDefinition = {
  keyword: ['maxLength', 'minLength'],
  type: 'string',
  schemaType: 'number',
  $data: true,
  error,
  code(cxt) {
    const { keyword, data, schemaCode, gen } = cxt
    const count = useFunc(gen, ucs2length)
    cxt.fail$data(
      keyword === 'maxLength'
        ? _`${data}.length > ${schemaCode} && ${count}(${data}) > ${schemaCode}`
        : _`${data}.length < 2 * ${schemaCode} && ${count}(${data}) < ${schemaCode}`,
    )
  },
}

/** Replaces ajv's minLength and maxLength with the same checks, counted only when the length leaves them open. */
export function useFastStringLength(ajv: Ajv): Ajv {
  ajv.removeKeyword('maxLength')
  ajv.removeKeyword('minLength')
  ajv.addKeyword(limitLength)
  return ajv
}
