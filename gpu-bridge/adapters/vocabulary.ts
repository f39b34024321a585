/**
 * Reading a service's status word through its adapter's vocabulary (docs/design.md §8): a word
 * the vocabulary lists means what it says there; any other word (a service newer than its
 * adapter) is a running job at the vocabulary's `unknown` stage, so it is followed on, never
 * failed for a word.
 */
import type { ProgressVocabulary, ServiceWordMeaning } from './types.js'

export function meaningOf(vocabulary: ProgressVocabulary, word: string): ServiceWordMeaning {
  return Object.hasOwn(vocabulary.words, word)
    ? (vocabulary.words[word] ?? vocabulary.unknown)
    : vocabulary.unknown
}
